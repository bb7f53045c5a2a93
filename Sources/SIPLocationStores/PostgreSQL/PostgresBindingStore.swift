import Logging
import PostgresNIO
import SIPRegistrar

#if canImport(Glibc)
import Glibc
#endif

/// The store for several registrar nodes: bindings in PostgreSQL, one row per (aor, uri),
/// written with group commit (a 200 only after COMMIT). Every commit also appends to the
/// change log (``PostgresChangeLog``), which replication reads to follow the other nodes.
public final class PostgresBindingStore: BindingStore, Sendable {
    let client: PostgresClient
    let location: PostgresLocation
    /// This process's name in the `node` column and the change log.
    public let node: String
    let logger: Logger
    let committer: GroupCommitter
    /// How long a commit may take before the REGISTER is answered 503.
    let commitTimeout: Duration
    /// Up or down, logged once per change.
    let health: StoreHealth
    /// The change log replication reads (and this store appends to at every commit).
    package let changeLog: PostgresChangeLog
    /// Where the nodes sharing this store are reached.
    package let nodeTable: PostgresNodeTable

    /// A pool for `location` (not connected before ``runClient()`` runs); nothing is read or
    /// written before ``migrate()``.
    package init(location: PostgresLocation, node: String, logger: Logger, commitTimeout: Duration = .seconds(3),
                 health: StoreHealth = StoreHealth()) {
        self.health = health
        self.location = location
        self.node = node
        self.logger = logger
        self.commitTimeout = commitTimeout
        var config = PostgresClient.Configuration(host: location.host, port: location.port, username: location.user,
                                                  password: location.password, database: location.database, tls: .disable)
        switch location.sslMode {
        case "require": config.tls = .require(.makeClientConfiguration())
        case "prefer": config.tls = .prefer(.makeClientConfiguration())
        default: config.tls = .disable
        }
        config.options.connectTimeout = .seconds(2)
        config.options.maximumConnections = 6
        config.options.minimumConnections = 1
        config.options.keepAliveBehavior = .init(frequency: .seconds(10))
        // The pool's own log. Its one message at warning or above is "lease before run()": the
        // pool's task (`runClient()`) is started just before the first query, which may win the
        // race to the pool on another core; the lease then waits for the pool, so nothing is
        // wrong, and the warning broke the one-line start-up error. Connection failures reach
        // the operator through the store's errors ("the database did not answer in time").
        var background = logger
        background.logLevel = max(logger.logLevel, .error)
        let client = PostgresClient(configuration: config, backgroundLogger: background)
        self.client = client
        let changeLog = PostgresChangeLog(client: client, node: node, logger: logger, health: health)
        self.changeLog = changeLog
        self.nodeTable = PostgresNodeTable(client: client, node: node, logger: logger)
        let writer = PostgresBatchWriter(client: client, node: node, logger: logger, changeLog: changeLog,
                                         testCommitDelay: PostgresBatchWriter.parseTestCommitDelay(
                                             getenv("SIP_REGISTRAR_TEST_COMMIT_DELAY_MS").map { String(cString: $0) }))
        let limit = GroupCommitter.Limit(wait: commitTimeout + .seconds(2), logger: logger, describe: describePostgresError) { aors in
            changeLog.report(.lateCommit(aors))
        }
        self.committer = GroupCommitter(limit: limit) { batch in try await writer.commit(batch) }
    }

    /// Runs the connection pool until cancelled (it must run for any query to work).
    package func runClient() async { await client.run() }

    var description: String { "postgres://\(location.user)@\(location.host):\(location.port)/\(location.database)" }

    /// Creates or upgrades the schema, one node at a time (an advisory lock), and proves the database answers.
    public func migrate() async throws {
        try await PostgresSchema.migrate(client, logger: logger)
    }

    // MARK: BindingStore

    public func loadAll() async throws -> [Binding] {
        try await withTimeout(.seconds(30)) { [self] in
            try await client.withConnection { conn in try await PostgresBindingTable.fetch(conn, where: nil, logger: self.logger) }
        }
    }

    /// Waits `commitTimeout` at most for a submission still queued: then it is withdrawn and can
    /// never land (a 503 means "not stored"). One already sent to the database cannot be taken
    /// back, so its REGISTER waits for the real outcome (bounded by the committer's own limit).
    public func apply(_ changes: [BindingChange]) async throws {
        guard !changes.isEmpty else { return }
        let submission = CommitSubmission(changes)
        await committer.enqueue(submission)
        let timer = Task { [commitTimeout] in
            try? await Task.sleep(for: commitTimeout)
            if !Task.isCancelled { submission.withdraw(StoreTimeout()) }
        }
        defer { timer.cancel() }
        do {
            try await submission.wait()
            health.up(logger: logger)
        } catch {
            health.down(error, logger: logger)
            // Reload these addresses from the database once it answers (a commit that was sent may have landed).
            changeLog.markSuspect(Set(changes.map(\.aor)))
            throw error
        }
    }
}
