import CoreMetrics
import Logging
import ServiceLifecycle
import SIPLocationStores
import SIPMessage
import SIPRegistrar

/// Keeps this node's in-memory index in step with the other nodes sharing the
/// PostgreSQL store: LISTEN for their commits, then read the change log past the last
/// sequence number seen and reload the addresses of record they changed. The same
/// catch-up runs after every (re)connection and every few seconds, so a lost
/// notification or a dropped connection delays a change but never loses it.
final class PostgresReplication: Service, Sendable {
    let changeLog: PostgresChangeLog
    let registrar: Registrar
    let logger: Logger
    let syncer: PostgresSyncer
    /// Where the nodes are reached; this node's own `node_address` is published into it.
    let directory: NodeDirectory?
    let nodeTable: PostgresNodeTable?
    let nodeAddress: String?

    init(changeLog: PostgresChangeLog, registrar: Registrar, startSequence: Int64, logger: Logger, metrics: ServerMetrics? = nil,
         directory: NodeDirectory? = nil, nodeTable: PostgresNodeTable? = nil, nodeAddress: String? = nil) {
        self.directory = directory
        self.nodeTable = nodeTable
        self.nodeAddress = nodeAddress
        self.changeLog = changeLog
        self.registrar = registrar
        self.logger = logger
        let syncer = PostgresSyncer(changeLog: changeLog, registrar: registrar, lastSequence: startSequence, logger: logger,
                                    metrics: metrics)
        self.syncer = syncer
        changeLog.observe { event in
            switch event {
            case .lockWait:
                metrics?.count("sip_replication_lock_waits_total")
            case .lateCommit(let aors):
                // Answered 503, stored all the same: read these back so that this node shows what the others do.
                changeLog.markSuspect(aors)
                Task { await syncer.request() }
            }
        }
    }

    func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.listen() }
            group.addTask { await self.tick() }
            if let directory = self.directory, let nodeTable = self.nodeTable {
                group.addTask { await self.heartbeat(directory, nodeTable) }
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
                // Whatever happened while not listening is read at the start, then every other node's commit.
                try await changeLog.listen { [syncer] in await syncer.request() }
            } catch {
                if Task.isCancelled { return }
                changeLog.health.down(error, logger: logger)
            }
            try? await Task.sleep(for: .milliseconds(500))
        }
    }

    /// Publishes this node's address and reads the other nodes' (a heartbeat: a node whose row
    /// goes stale is taken for gone, and its flows for failed).
    private func heartbeat(_ directory: NodeDirectory, _ nodeTable: PostgresNodeTable) async {
        while !Task.isCancelled {
            do {
                let rows = try await withTimeout(.seconds(10)) { [nodeAddress] in
                    try await nodeTable.refresh(publishing: nodeAddress)
                }
                directory.replace(rows.map { ($0.node, $0.address, $0.age) })
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
                _ = try? await withTimeout(.seconds(10)) { [changeLog] in
                    try await changeLog.prune()
                    return true
                }
            }
        }
    }
}

/// One catch-up at a time; requests while one runs coalesce into one more.
actor PostgresSyncer {
    let changeLog: PostgresChangeLog
    let registrar: Registrar
    let logger: Logger
    let metrics: ServerMetrics?
    private var lastSequence: Int64
    private var wanted = false
    private var running = false
    private var stopped = false

    init(changeLog: PostgresChangeLog, registrar: Registrar, lastSequence: Int64, logger: Logger, metrics: ServerMetrics?) {
        self.changeLog = changeLog
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
                changeLog.health.up(logger: logger)
                if !deferred.isEmpty {
                    // A local commit for these was in flight: read them again once it is done.
                    changeLog.markSuspect(deferred)
                    try? await Task.sleep(for: .milliseconds(20))
                    wanted = true
                }
            } catch {
                changeLog.health.down(error, logger: logger)
                try? await Task.sleep(for: .milliseconds(500))
                wanted = true
            }
        }
        running = false
    }

    private func syncOnce() async throws -> [String] {
        let suspects = changeLog.takeSuspects()
        let since = lastSequence
        let changeLog = self.changeLog, registrar = self.registrar, metrics = self.metrics, logger = self.logger
        do {
            let (latest, deferred) = try await withTimeout(.seconds(10)) { () async throws -> (Int64, [String]) in
                try await changeLog.read { log in
                    let started = ContinuousClock.now
                    let (changed, latest, gap) = try await log.changes(after: since)
                    if gap {
                        logger.notice("change log pruned past what this node read: reloading every binding",
                                      metadata: ["store.last_read": "\(since)", "store.latest": "\(latest)"])
                        metrics?.count("sip_replication_full_reloads_total")
                        registrar.beginReplicationRead()
                        let all = try await log.bindings(of: nil)
                        return (latest, registrar.replaceAllBindings(with: all, localNode: changeLog.node))
                    }
                    var age: [String: Double] = [:]
                    for (aor, seconds) in changed { age[aor] = seconds }
                    let wanted = Set(age.keys).union(suspects)
                    guard !wanted.isEmpty else { return (latest, []) }
                    registrar.beginReplicationRead()
                    let rows = try await log.bindings(of: Array(wanted))
                    var grouped: [String: [Binding]] = [:]
                    for b in rows { grouped[b.aor, default: []].append(b) }
                    var deferred: [String] = []
                    for aor in wanted where !registrar.replaceBindings(of: aor, with: grouped[aor] ?? [], localNode: changeLog.node) {
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
            changeLog.markSuspect(suspects)
            throw error
        }
    }
}
