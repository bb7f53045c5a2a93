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
    /// The limits, domains and modes it was made with.
    public let configuration: RegistrarConfiguration
    let domains: DomainMatcher
    let supported: Set<String>
    let store: any BindingStore
    let clock: any RegistrarClock
    let timers: (any SIPTimerScheduler)?
    let state: LockedState<State>
    let subscribers = LockedState<[UInt64: AsyncStream<BindingEvent>.Continuation]>([:])
    let observers = LockedState<[@Sendable (BindingEvent) -> Void]>([])
    let nextSubscriber = LockedState<UInt64>(0)
    let userAgents = StringInterner()

    struct State: Sendable {
        var records: [String: [Binding]] = [:]
        var heap = ExpiryHeap()
        var bindingCount = 0
        /// How many bindings use each connection (flow).
        var flows: [UInt64: Int] = [:]
        /// Addresses of record with a change applied here but not yet committed to the store.
        var uncommitted: [String: Int] = [:]
        /// Addresses of record whose commit failed or timed out, with the bindings it would have
        /// written: a shared store may hold them all the same (a commit already sent cannot be taken
        /// back). Until `until`, an unregister for them is written even when memory holds nothing.
        var unsure: [String: Unsure] = [:]
        var unsurePruneAt = 1024
        var timer: (any SIPScheduledTimer)?
        var timerDue: Int64?

        struct Unsure: Sendable {
            var bindings: [Binding]
            var until: Int64
        }

        /// A commit of `changes` for `aor` failed: remember what it would have stored.
        mutating func markUnsure(_ aor: String, _ changes: [BindingChange], now: Int64) {
            let written = changes.compactMap { c -> Binding? in
                if case .upsert(let b) = c { return b }
                return nil
            }
            guard !written.isEmpty else { return }
            if unsure.count >= unsurePruneAt {
                unsure = unsure.filter { $0.value.until > now }
                unsurePruneAt = Swift.max(1024, unsure.count * 2)
            }
            var u = unsureBindings(aor, now: now)
            u.removeAll { b in written.contains { $0.uri == b.uri } }
            unsure[aor] = Unsure(bindings: u + written, until: now + Registrar.unsureMilliseconds)
        }

        func unsureBindings(_ aor: String, now: Int64) -> [Binding] {
            guard !unsure.isEmpty, let u = unsure[aor], u.until > now else { return [] }
            return u.bindings
        }

        /// Addresses of record whose local commit finished since a replication read began
        /// (tracked only once replication reads: see ``Registrar/beginReplicationRead()``).
        var committedSinceRead: Set<String> = []
        var replicationReads = false

        /// Rebuilds the expiry heap from the bindings held: one entry per binding, none stale.
        mutating func rebuildHeap() {
            var entries: [ExpiryHeap.Entry] = []
            entries.reserveCapacity(bindingCount)
            for (aor, list) in records {
                for b in list { entries.append(.init(expiresAt: b.expiresAt, aor: aor)) }
            }
            heap.rebuild(entries)
        }

        /// A commit for `aor` finished (either way).
        mutating func markCommitted(_ aor: String) {
            if replicationReads { committedSinceRead.insert(aor) }
            guard let n = uncommitted[aor] else { return }
            uncommitted[aor] = n > 1 ? n - 1 : nil
        }

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

    /// How long after a failed commit an unregister is written to the store whatever memory holds:
    /// far longer than a commit may take before the store gives up on it.
    static let unsureMilliseconds: Int64 = 60_000

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
            var grouped: [String: [Binding]] = [:]
            grouped.reserveCapacity(all.count)
            var n = 0
            for var b in all {
                guard b.isActive(at: now) else {
                    stale.append(.expired(aor: b.aor, uri: b.uri, at: b.expiresAt))
                    continue
                }
                // Connections do not survive a restart: the flow ids of another process mean nothing here.
                b.flowID = nil
                b.userAgent = b.userAgent.map(userAgents.intern)
                grouped[b.aor, default: []].append(b)
                n += 1
            }
            if s.records.isEmpty {
                // Start-up: the grouped dictionary becomes the index (a million load in a few seconds).
                s.records = grouped
                s.bindingCount = n
            } else {
                for (aor, list) in grouped { s.setBindings(aor, from: s.records[aor] ?? [], to: list) }
            }
            s.rebuildHeap()
            return n
        }
        if !stale.isEmpty { try await store.apply(stale) }
        scheduleExpiry()
        return loaded
    }

    // MARK: Receiving

    /// REGISTER: what the dispatcher lists in `Allow` for this registrar.
    public var allowedMethods: [SIPMethod] { [.register] }

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

    /// Calls `body` for every binding event, synchronously on the thread that made the
    /// change (keep it short: a counter, a log line). Cheaper than ``events(bufferingNewest:)``,
    /// which wakes another task for every event.
    public func observe(_ body: @escaping @Sendable (BindingEvent) -> Void) {
        observers.withLock { $0.append(body) }
    }

    /// Whether anybody listens; events are not even built otherwise.
    var hasSubscribers: Bool { subscribers.withLock { !$0.isEmpty } || observers.withLock { !$0.isEmpty } }

    func emit(_ events: [BindingEvent]) {
        guard !events.isEmpty else { return }
        for o in observers.withLock({ $0 }) {
            for e in events { o(e) }
        }
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

// MARK: Replication

extension Registrar {
    /// Replaces the bindings of `aor` with what a store shared by several nodes holds
    /// (another node registered, refreshed or removed contacts). Nothing is written back
    /// to the store and no event is emitted: the node that made the change did both.
    ///
    /// A binding whose `node` is `localNode` was written by this node: the connection it
    /// arrived on is kept from the local index (the store's flow ids are per process).
    ///
    /// Returns false, changing nothing, while a REGISTER for `aor` is being committed
    /// here, or when one finished since ``beginReplicationRead()``: the snapshot may predate
    /// that commit. Read the store again afterwards.
    @discardableResult
    public func replaceBindings(of aor: String, with bindings: [Binding], localNode: String?) -> Bool {
        let now = clock.nowMilliseconds()
        let replaced = state.withLock { s -> Bool in
            if s.uncommitted[aor] != nil || s.committedSinceRead.contains(aor) { return false }
            let old = s.records[aor] ?? []
            var fresh: [Binding] = []
            fresh.reserveCapacity(bindings.count)
            for var b in bindings where b.isActive(at: now) {
                b.flowID = nil
                b.userAgent = b.userAgent.map(userAgents.intern)
                if let localNode, b.node == localNode, let mine = old.first(where: { $0.uri == b.uri }) {
                    b.flowID = mine.flowID
                    b.node = nil
                    b.remoteFlowID = nil
                }
                fresh.append(b)
            }
            s.setBindings(aor, from: old, to: fresh)
            for b in fresh { s.heap.push(.init(expiresAt: b.expiresAt, aor: aor)) }
            return true
        }
        if replaced { scheduleExpiry() }
        return replaced
    }

    /// Call just before reading a shared store's rows for ``replaceBindings(of:with:localNode:)``:
    /// a local commit that finishes between that read and the replacement is not in the rows,
    /// so the replacement is refused for its address of record (read it again). Without this,
    /// a commit landing in that window was overwritten by the older rows for good (this node's
    /// own change-log rows are not read back).
    public func beginReplicationRead() {
        state.withLock { s in
            s.replicationReads = true
            s.committedSinceRead.removeAll(keepingCapacity: true)
        }
    }

    /// Replaces the whole index with a store's full contents (after a node was cut off
    /// for longer than the store keeps its change log). Returns the addresses of record
    /// left as they were because a commit was in flight (read those again).
    @discardableResult
    public func replaceAllBindings(with bindings: [Binding], localNode: String?) -> [String] {
        var grouped: [String: [Binding]] = [:]
        for b in bindings { grouped[b.aor, default: []].append(b) }
        let gone = state.withLock { s in s.records.keys.filter { grouped[$0] == nil } }
        var deferred: [String] = []
        for aor in gone where !replaceBindings(of: aor, with: [], localNode: localNode) { deferred.append(aor) }
        for (aor, list) in grouped where !replaceBindings(of: aor, with: list, localNode: localNode) { deferred.append(aor) }
        return deferred
    }
}
