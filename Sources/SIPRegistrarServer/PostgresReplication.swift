import CoreMetrics
import Logging
import PostgresNIO
import ServiceLifecycle
import SIPMessage
import SIPRegistrar
import Synchronization

/// Keeps this node's in-memory index in step with the other nodes sharing the
/// PostgreSQL store: LISTEN for their commits, then read the change log past the last
/// sequence number seen and reload the addresses of record they changed. The same
/// catch-up runs after every (re)connection and every few seconds, so a lost
/// notification or a dropped connection delays a change but never loses it.
final class PostgresReplication: Service, Sendable {
    let store: PostgresBindingStore
    let registrar: Registrar
    let logger: Logger
    let syncer: PostgresSyncer
    /// Where the nodes are reached; this node's own `node_address` is published into it.
    let directory: NodeDirectory?
    let nodeAddress: String?

    init(store: PostgresBindingStore, registrar: Registrar, startSequence: Int64, logger: Logger, metrics: ServerMetrics? = nil,
         directory: NodeDirectory? = nil, nodeAddress: String? = nil) {
        self.directory = directory
        self.nodeAddress = nodeAddress
        self.store = store
        self.registrar = registrar
        self.logger = logger
        let syncer = PostgresSyncer(store: store, registrar: registrar, lastSequence: startSequence, logger: logger, metrics: metrics)
        self.syncer = syncer
        store.events.withLock {
            $0 = { event in
                switch event {
                case .lockWait:
                    metrics?.count("sip_replication_lock_waits_total")
                case .lateCommit(let aors):
                    // Answered 503, stored all the same: read these back so that this node shows what the others do.
                    store.suspect.withLock { $0.formUnion(aors) }
                    Task { await syncer.request() }
                }
            }
        }
    }

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listen() }
            group.addTask { await self.tick() }
            if let directory = self.directory {
                group.addTask { await self.heartbeat(directory) }
            }
            try? await gracefulShutdown()
            group.cancelAll()
        }
        await syncer.stop()
    }

    /// LISTEN on a connection of its own; on any error wait a moment and listen again.
    private func listen() async {
        while !Task.isCancelled {
            do {
                try await store.client.withConnection { conn in
                    try await conn.listen(on: PostgresBindingStore.channel) { notifications in
                        // Whatever happened while not listening is read now.
                        await self.syncer.request()
                        for try await n in notifications where n.payload != self.store.node {
                            await self.syncer.request()
                        }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                store.health.down(error, logger: logger)
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Publishes this node's address and reads the other nodes' (a heartbeat: a node whose row
    /// goes stale is taken for gone, and its flows for failed).
    private func heartbeat(_ directory: NodeDirectory) async {
        while !Task.isCancelled {
            do {
                _ = try await withTimeout(.seconds(10)) { [store, nodeAddress] in
                    try await store.refreshNodes(address: nodeAddress, into: directory)
                    return true
                }
            } catch {
                if Task.isCancelled { return }
                logger.debug("node directory not refreshed", metadata: ["error": "\(describePostgresError(error))"])
            }
            try? await Task.sleep(for: NodeDirectory.refreshEvery)
        }
    }

    /// A catch-up every few seconds (a safety net), and pruning of the change log.
    private func tick() async {
        var n = 0
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(5))
            if Task.isCancelled { return }
            await syncer.request()
            n += 1
            if n % 12 == 0 {
                _ = try? await withTimeout(.seconds(10)) { [store] in
                    try await store.client.query("DELETE FROM sip_registrar_changes WHERE at < now() - interval '10 minutes'")
                    return true
                }
            }
        }
    }
}

/// One catch-up at a time; requests while one runs coalesce into one more.
actor PostgresSyncer {
    let store: PostgresBindingStore
    let registrar: Registrar
    let logger: Logger
    let metrics: ServerMetrics?
    private var lastSequence: Int64
    private var wanted = false
    private var running = false
    private var stopped = false

    init(store: PostgresBindingStore, registrar: Registrar, lastSequence: Int64, logger: Logger, metrics: ServerMetrics?) {
        self.store = store
        self.registrar = registrar
        self.lastSequence = lastSequence
        self.logger = logger
        self.metrics = metrics
    }

    func request() {
        wanted = true
        guard !running, !stopped else { return }
        running = true
        Task { await self.drain() }
    }

    func stop() { stopped = true }

    private func drain() async {
        while wanted && !stopped {
            wanted = false
            do {
                let deferred = try await syncOnce()
                store.health.up(logger: logger)
                if !deferred.isEmpty {
                    // A local commit for these was in flight: read them again once it is done.
                    store.suspect.withLock { $0.formUnion(deferred) }
                    try? await Task.sleep(for: .milliseconds(20))
                    wanted = true
                }
            } catch {
                store.health.down(error, logger: logger)
                try? await Task.sleep(for: .milliseconds(500))
                wanted = true
            }
        }
        running = false
    }

    private func syncOnce() async throws -> [String] {
        let suspects = store.suspect.withLock { s -> Set<String> in
            let v = s
            s = []
            return v
        }
        let since = lastSequence
        let store = self.store, registrar = self.registrar, metrics = self.metrics, logger = self.logger
        do {
            let (latest, deferred) = try await withTimeout(.seconds(10)) { () async throws -> (Int64, [String]) in
                try await store.client.withConnection { conn in
                    let started = ContinuousClock.now
                    let (changed, latest, gap) = try await store.changes(after: since, conn)
                    if gap {
                        logger.notice("change log pruned past what this node read: reloading every binding",
                                      metadata: ["store.last_read": "\(since)", "store.latest": "\(latest)"])
                        metrics?.count("sip_replication_full_reloads_total")
                        registrar.beginReplicationRead()
                        let all = try await store.fetch(conn, where: nil)
                        return (latest, registrar.replaceAllBindings(with: all, localNode: store.node))
                    }
                    var age: [String: Double] = [:]
                    for (aor, seconds) in changed { age[aor] = seconds }
                    let wanted = Set(age.keys).union(suspects)
                    guard !wanted.isEmpty else { return (latest, []) }
                    registrar.beginReplicationRead()
                    let rows = try await store.fetch(conn, where: Array(wanted))
                    var grouped: [String: [Binding]] = [:]
                    for b in rows { grouped[b.aor, default: []].append(b) }
                    var deferred: [String] = []
                    for aor in wanted where !registrar.replaceBindings(of: aor, with: grouped[aor] ?? [], localNode: store.node) {
                        deferred.append(aor)
                    }
                    if let metrics {
                        // Commit (the database's clock at the log insert) to applied here.
                        let local = Double((ContinuousClock.now - started).nanosecondsValue) / 1e9
                        let skipped = Set(deferred)
                        for (aor, seconds) in age where !skipped.contains(aor) {
                            metrics.replicationLag.recordNanoseconds(Int64((seconds + local) * 1e9))
                        }
                    }
                    return (latest, deferred)
                }
            }
            lastSequence = max(lastSequence, latest)
            return deferred
        } catch {
            store.suspect.withLock { $0.formUnion(suspects) }
            throw error
        }
    }
}

/// Whether the database answers, with one log line per change of state.
final class StoreHealth: Sendable {
    private let isUp = Mutex<Bool>(true)
    let onChange: @Sendable (Bool) -> Void

    init(onChange: @escaping @Sendable (Bool) -> Void = { _ in }) { self.onChange = onChange }

    var up: Bool { isUp.withLock { $0 } }

    func up(logger: Logger) {
        let changed = isUp.withLock { v -> Bool in
            defer { v = true }
            return !v
        }
        if changed {
            logger.notice("PostgreSQL reachable again: REGISTERs are committed again")
            onChange(true)
        }
    }

    func down(_ error: any Error, logger: Logger) {
        let changed = isUp.withLock { v -> Bool in
            defer { v = false }
            return v
        }
        if changed {
            logger.error("PostgreSQL unreachable: REGISTERs get 503 until it is back; lookups use the local index",
                         metadata: ["error": "\(describePostgresError(error))"])
            onChange(false)
        }
    }
}

/// PostgresNIO keeps details out of `description`; the reflection names the cause (no password is in it).
func describePostgresError(_ error: any Error) -> String {
    if error is StoreTimeout { return "\(error)" }
    let text = String(reflecting: error)
    return text.count > 400 ? String(text.prefix(400)) + "…" : text
}
