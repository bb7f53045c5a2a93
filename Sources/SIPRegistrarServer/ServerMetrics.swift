import Atomics
import CoreMetrics
import Metrics
import NIOConcurrencyHelpers
import Prometheus
import SIPMessage
import SIPProxy
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
    static let countedMethods: [String] = ["REGISTER", "INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "INFO", "UPDATE",
                                           "PRACK", "SUBSCRIBE", "NOTIFY", "REFER", "MESSAGE", "PUBLISH"]
    private static let methodSlots = countedMethods.count + 1  // the last one is `other`
    private static let transports = SIPTransportProtocol.allCases
    /// Response codes with a slot of their own (RFC 3261 7.2: three digits, 1xx to 6xx); a
    /// code outside is counted through ``counter(_:_:)``.
    private static let slottedCodes = 100..<700
    private static let bindingKinds = 4     // created, refreshed, removed, expired
    private static let branchOutcomes = 9   // 1xx to 6xx, timeout, transport_error, flow_failed

    /// The counters of the per-message families (bumped two or three times per message, and
    /// a few times more per proxied transaction), by slot: method × transport, code ×
    /// transport, and so on. A slot is read with one atomic load: no lock, no hashing and no
    /// label strings (a lock here was taken by both event loops for every message). It is
    /// filled once, through ``counter(_:_:)``, which keeps one instance per name and labels,
    /// so two loops racing to fill a slot store the same counter.
    private let requestSlots = CounterSlots(count: methodSlots * transports.count)
    private let responseSlots = CounterSlots(count: slottedCodes.count * transports.count)
    private let registrationSlots = CounterSlots(count: bindingKinds)
    private let forwardedSlots = CounterSlots(count: methodSlots)
    private let branchSlots = CounterSlots(count: branchOutcomes)
    private let finalResponseSlots = CounterSlots(count: methodSlots * slottedCodes.count)

    /// The method's slot: its place in ``countedMethods`` (short strings compared one by
    /// one, REGISTER first), or the last one for `other`.
    private static func methodIndex(_ method: SIPMethod) -> Int {
        countedMethods.firstIndex(of: method.rawValue) ?? countedMethods.count
    }

    /// A method's label: its name when it is one of ``countedMethods``, else `other`.
    private static func label(_ methodIndex: Int) -> String {
        methodIndex < countedMethods.count ? countedMethods[methodIndex] : "other"
    }

    private static func transportIndex(_ t: SIPTransportProtocol) -> Int {
        transports.firstIndex(of: t) ?? 0
    }

    /// A code's place in ``slottedCodes``, nil outside it.
    private static func codeIndex(_ code: Int) -> Int? {
        slottedCodes.contains(code) ? code - slottedCodes.lowerBound : nil
    }

    func requestReceived(_ method: SIPMethod, _ transport: SIPTransportProtocol) {
        let m = Self.methodIndex(method)
        requestSlots.counter(m * Self.transports.count + Self.transportIndex(transport)) {
            counter("sip_requests_total", [("method", Self.label(m)), ("transport", transport.rawValue.lowercased())])
        }.increment()
    }

    func responseSent(_ code: Int, _ transport: SIPTransportProtocol) {
        let make = { self.counter("sip_responses_total", [("code", String(code)), ("transport", transport.rawValue.lowercased())]) }
        guard let c = Self.codeIndex(code) else { return make().increment() }
        responseSlots.counter(c * Self.transports.count + Self.transportIndex(transport), make).increment()
    }

    func bindingEvent(_ e: BindingEvent) {
        let slot = switch e {
        case .created: 0
        case .refreshed: 1
        case .removed: 2
        case .expired: 3
        }
        registrationSlots.counter(slot) { counter("sip_registrations_total", [("event", e.kind)]) }.increment()
    }

    /// A request the proxy forwarded (`sip_proxy_forwarded_total` by method).
    func proxyForwarded(_ method: SIPMethod) {
        let m = Self.methodIndex(method)
        forwardedSlots.counter(m) { counter("sip_proxy_forwarded_total", [("method", Self.label(m))]) }.increment()
    }

    /// A branch of a proxied transaction that ended (`sip_proxy_branches_total` by outcome).
    func proxyBranchEnded(_ outcome: BranchOutcome) {
        let make = { self.counter("sip_proxy_branches_total", [("outcome", outcome.metricLabel)]) }
        let slot: Int
        switch outcome {
        case .answered(let code) where (1...6).contains(code / 100): slot = code / 100 - 1
        case .answered: return make().increment()
        case .timedOut: slot = 6
        case .transportError: slot = 7
        case .flowFailed: slot = 8
        }
        branchSlots.counter(slot, make).increment()
    }

    /// The final response of a proxied transaction (`sip_proxy_final_responses_total` by
    /// method and code).
    func proxyFinished(_ method: SIPMethod, code: Int) {
        let m = Self.methodIndex(method)
        let make = { self.counter("sip_proxy_final_responses_total", [("method", Self.label(m)), ("code", String(code))]) }
        guard let c = Self.codeIndex(code) else { return make().increment() }
        finalResponseSlots.counter(m * Self.slottedCodes.count + c, make).increment()
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

/// Counters by slot number, each made on first use and from then on read with one atomic
/// load. The slots are one allocation of pointer-sized atomic references, all empty at
/// first (a table with a slot for every response code and method costs 9,000 words, not
/// 9,000 objects).
///
/// `@unchecked Sendable`: `slots` is set once in `init` and never reassigned; the memory
/// it points to is read and written only through `UnsafeAtomicLazyReference`'s atomic
/// load and compare-and-exchange, which are safe from any thread; `deinit` (disposing the
/// stored references and freeing the memory) runs only once no thread holds the object.
private final class CounterSlots: @unchecked Sendable {
    private typealias Reference = UnsafeAtomicLazyReference<CoreMetrics.Counter>
    private let slots: UnsafeMutablePointer<Reference.Storage>
    private let count: Int

    init(count: Int) {
        self.count = count
        slots = .allocate(capacity: count)
        slots.initialize(repeating: Reference.Storage(), count: count)
    }

    deinit {
        for i in 0..<count { slots[i].dispose() }
        slots.deinitialize(count: count)
        slots.deallocate()
    }

    /// The slot's counter; `make` runs only while the slot is empty (it may run on two
    /// threads at once: the first to store wins, and both get what was stored).
    func counter(_ slot: Int, _ make: () -> CoreMetrics.Counter) -> CoreMetrics.Counter {
        precondition(slot >= 0 && slot < count, "counter slot \(slot) outside 0..<\(count)")
        let reference = Reference(at: slots + slot)
        if let made = reference.load() { return made }
        return reference.storeIfNilThenLoad(make())
    }
}
