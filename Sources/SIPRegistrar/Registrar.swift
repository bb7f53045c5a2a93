public import SIPMessage

/// An RFC 3261 registrar with Net::SIP's API: `receive(_:from:)` processes a
/// REGISTER (section 10.3) and answers it, `query(_:)` returns the contacts of an
/// address with scheme filtering (RFC 5630), `expire(now:)` drops what has expired.
///
/// It is a receiver in a dispatcher's chain: it never touches a socket, and its
/// only dependency is the message layer. State lives in memory behind a lock; the
/// ``BindingStore`` makes changes durable before the 200 is returned.
///
/// ```swift
/// let registrar = try Registrar(dispatcher: dispatcher, minExpires: 10, maxExpires: 60,
///                               domains: ["example.com", "example.org"])
/// ```
public final class Registrar: SIPReceiver {
    public let configuration: RegistrarConfiguration
    let domains: DomainMatcher
    let supported: Set<String>
    let store: any BindingStore
    let clock: any RegistrarClock
    let timers: (any SIPTimerScheduler)?
    let state: LockedState<State>
    let subscribers = LockedState<[UInt64: AsyncStream<BindingEvent>.Continuation]>([:])
    let nextSubscriber = LockedState<UInt64>(0)
    let userAgents = StringInterner()

    struct State: Sendable {
        var records: [String: [Binding]] = [:]
        var heap = ExpiryHeap()
        var bindingCount = 0
        /// How many bindings use each connection (flow).
        var flows: [UInt64: Int] = [:]
        var timer: (any SIPScheduledTimer)?
        var timerDue: Int64?

        /// Replaces an AOR's bindings, keeping the counts and the flow references right.
        mutating func setBindings(_ aor: String, from old: [Binding], to new: [Binding]) {
            records[aor] = new.isEmpty ? nil : new
            bindingCount += new.count - old.count
            for b in old {
                guard let f = b.flowID else { continue }
                let n = (flows[f] ?? 1) - 1
                flows[f] = n > 0 ? n : nil
            }
            for b in new {
                if let f = b.flowID { flows[f, default: 0] += 1 }
            }
        }
    }

    /// Creates a registrar.
    /// - Parameters:
    ///   - configuration: validated settings.
    ///   - store: where changes are made durable; memory by default.
    ///   - clock: wall-clock time; injected for tests.
    ///   - timers: a dispatcher's timer service; with one, expired bindings are purged at
    ///     the earliest expiry time. Without one, call ``expire(now:)`` yourself (lookups
    ///     never return an expired binding either way).
    public init(configuration: RegistrarConfiguration = RegistrarConfiguration(),
                store: any BindingStore = EphemeralBindingStore(),
                clock: any RegistrarClock = SystemRegistrarClock(),
                timers: (any SIPTimerScheduler)? = nil) throws(RegistrarConfigurationError) {
        try configuration.validate()
        self.configuration = configuration
        self.domains = DomainMatcher(configuration.domains)
        self.supported = Set(configuration.supportedExtensions.map { $0.lowercased() })
        self.store = store
        self.clock = clock
        self.timers = timers
        self.state = LockedState(State())
    }

    /// Net::SIP's constructor: `Net::SIP::Registrar->new(dispatcher, min_expires, max_expires, domains)`.
    public convenience init(dispatcher: (any SIPTimerScheduler)?, minExpires: Int = 30, maxExpires: Int = 300,
                            domains: [String] = [], store: any BindingStore = EphemeralBindingStore())
        throws(RegistrarConfigurationError) {
        try self.init(configuration: RegistrarConfiguration(minExpires: minExpires, maxExpires: maxExpires, domains: domains),
                      store: store, timers: dispatcher)
    }

    /// Net::SIP's `domain => "example.com"` form.
    public convenience init(dispatcher: (any SIPTimerScheduler)?, minExpires: Int = 30, maxExpires: Int = 300,
                            domain: String) throws(RegistrarConfigurationError) {
        try self.init(dispatcher: dispatcher, minExpires: minExpires, maxExpires: maxExpires, domains: [domain])
    }

    // MARK: Start-up

    /// Loads the store's bindings into the index, dropping expired ones. Returns how many were loaded.
    @discardableResult
    public func load() async throws -> Int {
        let all = try await store.loadAll()
        let now = clock.nowMilliseconds()
        var stale: [BindingChange] = []
        let loaded = state.withLock { s -> Int in
            var n = 0
            var grouped: [String: [Binding]] = [:]
            for b in all {
                guard b.isActive(at: now) else {
                    stale.append(.remove(aor: b.aor, uri: b.uri))
                    continue
                }
                grouped[b.aor, default: []].append(b)
            }
            var entries: [ExpiryHeap.Entry] = []
            entries.reserveCapacity(all.count)
            for (aor, list) in grouped {
                // Connections do not survive a restart: the flow ids of another process mean nothing here.
                let fresh = list.map { b -> Binding in
                    var b = b
                    b.flowID = nil
                    return b
                }
                s.setBindings(aor, from: s.records[aor] ?? [], to: fresh)
                n += fresh.count
                for b in fresh { entries.append(.init(expiresAt: b.expiresAt, aor: aor, uri: b.uri)) }
            }
            s.heap.rebuild(entries)
            return n
        }
        if !stale.isEmpty { try await store.apply(stale) }
        scheduleExpiry()
        return loaded
    }

    // MARK: Receiving

    /// Net::SIP's `receive`: handles a REGISTER (or, by ``NonRegisterMode``, another
    /// request for an address we hold) and returns the outcome; `.pass` when the
    /// request is not for this registrar.
    public func receive(_ request: SIPRequest, from source: SIPSource) async -> SIPReceiveOutcome {
        if request.method == .register {
            return await register(request, from: source)
        }
        return route(request, from: source)
    }

    // MARK: Events

    /// A stream of binding events (created, refreshed, removed, expired). Each call
    /// makes a new subscriber; at most `bufferingNewest` events wait for a slow reader.
    public func events(bufferingNewest limit: Int = 4096) -> AsyncStream<BindingEvent> {
        let id = nextSubscriber.withLock { n -> UInt64 in
            n += 1
            return n
        }
        let (stream, continuation) = AsyncStream<BindingEvent>.makeStream(bufferingPolicy: .bufferingNewest(limit))
        continuation.onTermination = { [weak self] _ in
            _ = self?.subscribers.withLock { $0.removeValue(forKey: id) }
        }
        subscribers.withLock { $0[id] = continuation }
        return stream
    }

    /// Whether anybody listens; events are not even built otherwise.
    var hasSubscribers: Bool { subscribers.withLock { !$0.isEmpty } }

    func emit(_ events: [BindingEvent]) {
        guard !events.isEmpty else { return }
        let targets = subscribers.withLock { Array($0.values) }
        for c in targets {
            for e in events { c.yield(e) }
        }
    }

    // MARK: Statistics

    /// The number of bindings held (including ones expired but not yet purged).
    public var bindingCount: Int { state.withLock { $0.bindingCount } }
    /// Whether a binding still uses the connection (flow) `id`: such a connection is kept open.
    public func isFlowInUse(_ id: UInt64) -> Bool { state.withLock { $0.flows[id] != nil } }

    /// The number of addresses of record held.
    public var aorCount: Int { state.withLock { $0.records.count } }
}
