import CoreMetrics
import Metrics
import NIOConcurrencyHelpers
import Prometheus
import SIPMessage
import SIPRegistrar
import SIPTransport

/// The server's metrics, exported in Prometheus text format at /metrics.
final class ServerMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    let commitLatency: Metrics.Timer
    /// Time from a commit on another node sharing the store to its change applied here.
    let replicationLag: Metrics.Timer

    init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        var f = PrometheusMetricsFactory(registry: registry)
        f.defaultDurationHistogramBuckets = [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
                                             .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
                                             .seconds(1)]
        f.durationHistogramBuckets["sip_replication_lag_seconds"] = [
            .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
            .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10)]
        factory = f
        commitLatency = Metrics.Timer(label: "sip_store_commit_seconds", factory: f)
        replicationLag = Metrics.Timer(label: "sip_replication_lag_seconds", factory: f)
    }

    private let counters = NIOLockedValueBox<[String: CoreMetrics.Counter]>([:])

    func counter(_ name: String, _ dims: [(String, String)] = []) -> CoreMetrics.Counter {
        let key = name + dims.map { "|\($0.0)=\($0.1)" }.joined()
        return counters.withLockedValue { c in
            if let hit = c[key] { return hit }
            let made = CoreMetrics.Counter(label: name, dimensions: dims, factory: factory)
            c[key] = made
            return made
        }
    }

    /// Whether the database answers (1) or not (0), and how often it stopped answering.
    func storeUp(_ up: Bool) {
        gauge("sip_store_up").record(up ? 1 : 0)
        if !up { count("sip_store_outages_total") }
    }

    /// Adds one to a counter.
    func count(_ name: String, _ dims: [(String, String)] = []) {
        counter(name, dims).increment()
    }

    func gauge(_ name: String, _ dims: [(String, String)] = []) -> CoreMetrics.Gauge {
        CoreMetrics.Gauge(label: name, dimensions: dims, factory: factory)
    }


    /// Methods counted under their own name (RFC 3261 and the extensions in common use). Any
    /// other method, a token anyone can make up, is counted as `other`: one counter per
    /// name would let a peer grow the registry without bound.
    static let countedMethods: Set<String> = ["REGISTER", "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE",
                                              "PRACK", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH"]

    /// The counters of the per-message families, by a key that costs no string building:
    /// these are bumped two or three times per message.
    private struct HotKey: Hashable {
        enum Family { case requests, responses, registrations }
        var family: Family
        var label: String
        var number: Int
        var transport: SIPTransportProtocol?
    }
    private let hot = NIOLockedValueBox<[HotKey: CoreMetrics.Counter]>([:])

    private func hotCounter(_ key: HotKey, _ make: () -> CoreMetrics.Counter) -> CoreMetrics.Counter {
        if let hit = hot.withLockedValue({ $0[key] }) { return hit }
        let made = make()  // through `counter`, which keeps one instance per name and labels
        hot.withLockedValue { $0[key] = made }
        return made
    }

    /// A method's label: its name when it is one of ``countedMethods``, else `other`.
    static func methodLabel(_ method: SIPMethod) -> String {
        countedMethods.contains(method.rawValue) ? method.rawValue : "other"
    }

    func requestReceived(_ method: SIPMethod, _ transport: SIPTransportProtocol) {
        let name = Self.methodLabel(method)
        hotCounter(HotKey(family: .requests, label: name, number: 0, transport: transport)) {
            counter("sip_requests_total", [("method", name), ("transport", transport.rawValue.lowercased())])
        }.increment()
    }

    func responseSent(_ code: Int, _ transport: SIPTransportProtocol) {
        hotCounter(HotKey(family: .responses, label: "", number: code, transport: transport)) {
            counter("sip_responses_total", [("code", String(code)), ("transport", transport.rawValue.lowercased())])
        }.increment()
    }

    func bindingEvent(_ e: BindingEvent) {
        let kind = e.kind
        hotCounter(HotKey(family: .registrations, label: kind, number: 0, transport: nil)) {
            counter("sip_registrations_total", [("event", kind)])
        }.increment()
    }

    func tlsHandshake(succeeded: Bool) {
        counter("sip_tls_handshakes_total", [("result", succeeded ? "ok" : "failed")]).increment()
    }

    /// Values read at scrape time: bindings, AORs, connections, transport counters.
    func refresh(registrar: Registrar, dispatcher: Dispatcher) {
        gauge("sip_bindings").record(registrar.bindingCount)
        gauge("sip_aors").record(registrar.aorCount)
        for t in [SIPTransportProtocol.tcp, .tls] {
            gauge("sip_open_connections", [("transport", t.rawValue.lowercased())]).record(dispatcher.openConnections(t))
        }
        for (c, v) in dispatcher.counterValues {
            gauge("sip_transport_events", [("event", c.rawValue)]).record(v)
        }
        gauge("sip_log_lines_dropped").record(LogSink.standardError.droppedLines)
    }

    func text() -> String { registry.emitToString() }
}

/// Times every commit of a store for the latency histogram.
struct TimedBindingStore: BindingStore {
    let inner: any BindingStore
    let metrics: ServerMetrics

    func loadAll() async throws -> [Binding] { try await inner.loadAll() }

    func apply(_ changes: [BindingChange]) async throws {
        let start = ContinuousClock.now
        defer { metrics.commitLatency.recordNanoseconds(Int64((ContinuousClock.now - start).nanosecondsValue)) }
        try await inner.apply(changes)
    }
}

extension Duration {
    var nanosecondsValue: Int64 {
        let (s, a) = components
        return s * 1_000_000_000 + a / 1_000_000_000
    }
}
