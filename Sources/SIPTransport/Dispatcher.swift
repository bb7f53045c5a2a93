import Logging
import NIOConcurrencyHelpers
public import NIOCore
import NIOPosix
public import SIPMessage
public import SIPTLS

/// Owns the legs (UDP, TCP, TLS listeners and their connections), the receive chain
/// and the transaction layer. Inbound: bytes from a leg are parsed, retransmissions
/// are answered from the server-transaction cache, a top Route naming this server is
/// removed, and the request goes down the chain of receivers; the response goes back
/// the way the request came (RFC 3261 18.2.2, RFC 3581). Outbound: ``send(_:to:flow:)``
/// picks a leg by the target's scheme (`sips:` only over TLS, never downgraded).
public final class Dispatcher: SIPTimerScheduler, Sendable {
    /// The limits, timeouts and policies it was made with.
    public let configuration: TransportConfiguration
    let group: any EventLoopGroup
    private let ownsGroup: Bool
    let logger: Logger
    let parser: SIPMessageParser
    let transactions: ServerTransactions
    let connections = ConnectionTable()
    /// New TLS connections per remote IP per second.
    let handshakeRate: WindowLimiter
    /// One log line per refusal reason and source per minute.
    let refusalLog = WindowLimiter(policy: .init(limit: 1, windowMilliseconds: 60_000))
    let clientTransactions = ClientTransactions()
    private let receivers = NIOLockedValueBox<[any SIPReceiver]>([])
    let legs = NIOLockedValueBox<Legs>(Legs())
    private let counters = NIOLockedValueBox<[TransportCounter: Int]>([:])
    private let flowInUse = NIOLockedValueBox<(@Sendable (UInt64) -> Bool)?>(nil)
    private let observers = NIOLockedValueBox<[@Sendable (TransportEvent) -> Void]>([])
    /// One task executor per event loop, keyed by the loop's identity.
    private let executors: [ObjectIdentifier: EventLoopTaskExecutor]
    /// One timer wheel per event loop, keyed by the loop's identity.
    private let wheels: [ObjectIdentifier: TimerWheel]
    private let firstWheel: TimerWheel
    /// The group's loops, in a fixed order: a request is processed on the one its Call-ID hashes to.
    let loops: [any EventLoop]
    /// Which loop processes a message when one peer's messages are spread over the loops.
    let loopAssignment: LoopAssignment
    private let defaultClientContext = NIOLockedValueBox<TLSContext?>(nil)
    let forwarderBox = NIOLockedValueBox<(any SIPForwarder)?>(nil)
    /// This host's interface addresses (IPv4-mapped ones unmapped), read once at start.
    public let interfaceAddresses: [String]

    struct Legs: Sendable {
        var udp: [UDPLeg] = [] { didSet { summarize() } }
        var stream: [StreamLeg] = [] { didSet { summarize() } }
        /// Kept as legs are bound, for every forwarded request: the transports of the legs, and
        /// per transport the first listener's address as text and its port.
        private(set) var transports: Set<SIPTransportProtocol> = []
        private(set) var firstListener: [SIPTransportProtocol: (ip: String?, port: Int?)] = [:]

        private mutating func summarize() {
            var first: [SIPTransportProtocol: (ip: String?, port: Int?)] = [:]
            for leg in udp where first[.udp] == nil { first[.udp] = (leg.localAddress.ipAddress, leg.localAddress.port) }
            for leg in stream where first[leg.transport] == nil {
                first[leg.transport] = (leg.localAddress.ipAddress, leg.localAddress.port)
            }
            firstListener = first
            transports = Set(first.keys)
        }
    }

    /// - Parameters:
    ///   - configuration: limits, timers and names of the legs and the transaction layer.
    ///   - group: event loops to run on; by default the dispatcher makes one loop per core.
    ///   - logger: where the transport logs (refusals, unparsable messages).
    public init(configuration: TransportConfiguration = TransportConfiguration(), group: (any EventLoopGroup)? = nil,
                logger: Logger = Logger(label: "sip.transport")) {
        self.configuration = configuration
        if let group {
            self.group = group
            self.ownsGroup = false
        } else {
            self.group = MultiThreadedEventLoopGroup(numberOfThreads: System.coreCount)
            self.ownsGroup = true
        }
        self.logger = logger
        var executors: [ObjectIdentifier: EventLoopTaskExecutor] = [:]
        var wheels: [ObjectIdentifier: TimerWheel] = [:]
        var loops: [any EventLoop] = []
        for loop in self.group.makeIterator() {
            executors[ObjectIdentifier(loop)] = EventLoopTaskExecutor(loop)
            wheels[ObjectIdentifier(loop)] = TimerWheel(loop: loop)
            loops.append(loop)
        }
        self.executors = executors
        self.wheels = wheels
        self.firstWheel = loops.first.flatMap { wheels[ObjectIdentifier($0)] } ?? TimerWheel(loop: self.group.next())
        self.loops = loops
        self.loopAssignment = LoopAssignment(loopCount: loops.count)
        self.interfaceAddresses = ((try? System.enumerateDevices()) ?? []).compactMap { $0.address?.ipAddress.map(Self.unmapped) }
        self.parser = SIPMessageParser(limits: configuration.parserLimits)
        self.transactions = ServerTransactions(capacity: configuration.maxServerTransactions)
        self.handshakeRate = WindowLimiter(policy: .init(limit: configuration.maxTLSHandshakesPerIPPerSecond,
                                                         windowMilliseconds: 1_000))
    }

    /// Reports a refused connection: counted always, told to observers once per reason and source per minute.
    func refuse(_ counter: TransportCounter, _ transport: SIPTransportProtocol, host: String, port: Int, reason: String) {
        count(counter)
        let now = Int64(Self.monotonicNow() / 1_000_000)
        if refusalLog.record(reason + "|" + host, now: now).isAllowed {
            notify(.connectionRefused(transport, remote: SIPSource.hostPort(host, port), reason: reason))
        }
    }

    /// The limits every inbound connection (TCP, TLS, WS, WSS) meets before anything else: a
    /// slot in total and per source address, and for a secure transport the TLS handshake
    /// rate per source. False when refused (counted and reported; the caller closes, no slot
    /// is held); true when a slot is taken, which ``ConnectionTable/release(ip:)`` gives back.
    func admitInbound(_ transport: SIPTransportProtocol, host: String, port: Int) -> Bool {
        let exempt = configuration.limitExemptions.contains(host)
        switch connections.admit(ip: host, maxTotal: configuration.maxConnections,
                                 maxPerIP: exempt ? Int.max : configuration.maxConnectionsPerIP) {
        case .admitted:
            break
        case .totalLimit:
            refuse(.connectionsRefusedTotalLimit, transport, host: host, port: port, reason: "connection limit")
            return false
        case .perIPLimit:
            refuse(.connectionsRefusedPerIPLimit, transport, host: host, port: port, reason: "per-IP connection limit")
            return false
        }
        if transport.isSecure && !exempt,
           !handshakeRate.record(SourceKey.limitKey(forIP: host), now: Int64(Self.monotonicNow() / 1_000_000)).isAllowed {
            connections.release(ip: host)
            refuse(.connectionsRefusedHandshakeRate, transport, host: host, port: port, reason: "TLS handshake rate per IP")
            return false
        }
        return true
    }

    /// Runs `body` as a task on `loop` (or on the default executor for a loop not in the group).
    func spawn(on loop: (any EventLoop)?, _ body: @escaping @Sendable () async -> Void) {
        if let loop, let executor = executors[ObjectIdentifier(loop)] {
            Task(executorPreference: executor) { await body() }
        } else {
            Task { await body() }
        }
    }

    // MARK: Receive chain

    /// Appends a receiver to the chain (authorization first, then the registrar, then others).
    public func addReceiver(_ receiver: any SIPReceiver) {
        receivers.withLockedValue { $0.append(receiver) }
    }

    func receiversList() -> [any SIPReceiver] { receivers.withLockedValue { $0 } }

    /// Tells the idle-timeout logic whether a binding still uses a connection.
    public func setFlowInUse(_ check: @escaping @Sendable (UInt64) -> Bool) {
        flowInUse.withLockedValue { $0 = check }
    }

    func isFlowInUse(_ id: UInt64) -> Bool {
        flowInUse.withLockedValue { $0 }?(id) ?? false
    }

    /// Observes transport events (connections, TLS handshakes, limits) for logs and metrics.
    public func observe(_ observer: @escaping @Sendable (TransportEvent) -> Void) {
        observers.withLockedValue { $0.append(observer) }
    }

    func notify(_ event: TransportEvent) {
        for o in observers.withLockedValue({ $0 }) { o(event) }
    }

    // MARK: Legs

    /// Binds a UDP leg (one socket per event loop with SO_REUSEPORT); port 0 picks a free port.
    @discardableResult
    public func bindUDP(host: String, port: Int) async throws -> SocketAddress {
        let leg = try await UDPLeg.bind(host: host, port: port, dispatcher: self)
        legs.withLockedValue { $0.udp.append(leg) }
        return leg.localAddress
    }

    /// Binds a TCP leg.
    @discardableResult
    public func bindTCP(host: String, port: Int) async throws -> SocketAddress {
        let leg = try await StreamLeg.bind(transport: .tcp, host: host, port: port, tls: nil, dispatcher: self)
        legs.withLockedValue { $0.stream.append(leg) }
        return leg.localAddress
    }

    /// Binds a TLS leg: the TCP leg decorated with `SIPTLS.TLSHandler`. New connections use
    /// the store's current context; `clientContext` is used for connections this server opens.
    @discardableResult
    public func bindTLS(host: String, port: Int, contexts: TLSContextStore, clientContext: TLSContext? = nil) async throws -> SocketAddress {
        // Without one given: one client context (system trust roots, names verified) built here,
        // once, and shared by every connection this leg opens.
        let client = try clientContext ?? sharedClientContext()
        let tls = StreamLeg.TLS(server: contexts, client: client)
        let leg = try await StreamLeg.bind(transport: .tls, host: host, port: port, tls: tls, dispatcher: self)
        legs.withLockedValue { $0.stream.append(leg) }
        return leg.localAddress
    }

    /// Binds a WebSocket leg (RFC 7118): `ws`, or with `contexts` `wss` (TLS underneath, our
    /// OpenSSL TLS handler as for the TLS leg). Clients upgrade with `Sec-WebSocket-Protocol: sip`.
    @discardableResult
    public func bindWebSocket(host: String, port: Int, contexts: TLSContextStore? = nil) async throws -> SocketAddress {
        let tls = contexts.map { StreamLeg.TLS(server: $0, client: nil) }
        let leg = try await StreamLeg.bind(transport: contexts == nil ? .ws : .wss, host: host, port: port, tls: tls,
                                           dispatcher: self)
        legs.withLockedValue { $0.stream.append(leg) }
        return leg.localAddress
    }

    /// The client TLS context used when ``bindTLS(host:port:contexts:clientContext:)`` is given none.
    private func sharedClientContext() throws -> TLSContext {
        try defaultClientContext.withLockedValue { c in
            if let c { return c }
            let made = try TLSContext(configuration: .client())
            c = made
            return made
        }
    }

    /// The bound listeners.
    public var listeners: [(transport: SIPTransportProtocol, address: SocketAddress)] {
        legs.withLockedValue { l in
            l.udp.map { (.udp, $0.localAddress) } + l.stream.map { ($0.transport, $0.localAddress) }
        }
    }

    var availableTransports: Set<SIPTransportProtocol> {
        legs.withLockedValue { $0.transports }
    }

    /// Open connections by transport.
    public func openConnections(_ transport: SIPTransportProtocol) -> Int { connections.count(of: transport) }

    /// Stops accepting, closes every connection and, if the dispatcher made its own loops, stops them.
    public func shutdown() async {
        let all = legs.withLockedValue { l -> [any Channel] in l.udp.flatMap(\.channels) + l.stream.map(\.channel) }
        for c in all { try? await c.close() }
        for c in connections.allChannels() { try? await c.close() }
        clientTransactions.failAll(DispatcherError.shutDown)
        for w in wheels.values { w.stop() }
        if ownsGroup { try? await group.shutdownGracefully() }
    }

    // MARK: Timers

    /// Runs `body` after `delay` (to 10 ms) on the calling event loop's timer wheel when called
    /// on one (no cross-thread wake-up: the proxy arms and disarms several timers per
    /// request), else on the first loop's. Arming and cancelling cost O(1) (`TimerWheel`).
    public func schedule(after delay: Duration, _ body: @escaping @Sendable () -> Void) -> any SIPScheduledTimer {
        scheduleOnWheel(after: delay, body)
    }

    /// ``schedule(after:_:)`` with the concrete timer (8 bytes to keep instead of an existential's 40).
    func scheduleOnWheel(after delay: Duration, _ body: @escaping @Sendable () -> Void) -> WheelTimer {
        let wheel = MultiThreadedEventLoopGroup.currentEventLoop.flatMap { wheels[ObjectIdentifier($0)] } ?? firstWheel
        return wheel.schedule(after: delay, body)
    }

    // MARK: Counters

    func count(_ c: TransportCounter, by n: Int = 1) {
        counters.withLockedValue { $0[c, default: 0] += n }
    }

    /// The transport's counters (parse errors, absorbed retransmissions, refused connections...).
    public var counterValues: [TransportCounter: Int] { counters.withLockedValue { $0 } }

    static func monotonicNow() -> UInt64 { UInt64(NIODeadline.now().uptimeNanoseconds) }
}

/// Events worth a log line or a metric.
public enum TransportEvent: Sendable {
    case connectionOpened(SIPTransportProtocol, remote: String)
    case connectionClosed(SIPTransportProtocol, remote: String)
    case connectionRefused(SIPTransportProtocol, remote: String, reason: String)
    case tlsHandshake(succeeded: Bool, remote: String, detail: String)
    case requestReceived(SIPMethod, SIPTransportProtocol)
    case responseSent(Int, SIPTransportProtocol)
    case dropped(reason: String, remote: String)
}

/// Why the dispatcher could not send a request or get its answer.
public enum DispatcherError: Error, Sendable, CustomStringConvertible {
    case shutDown
    case timeout
    case unroutable(String)
    case connectFailed(String)

    public var description: String {
        switch self {
        case .shutDown: return "the dispatcher is shut down"
        case .timeout: return "no final response before Timer F"
        case .unroutable(let s): return "cannot route: \(s)"
        case .connectFailed(let s): return "cannot connect: \(s)"
        }
    }
}

extension Duration {
    var nanoseconds: Int64 {
        let (s, a) = components
        if s >= Int64.max / 1_000_000_000 { return Int64.max }
        return s * 1_000_000_000 + a / 1_000_000_000
    }
}
