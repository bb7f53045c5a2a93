import Logging
import PostgresNIO
import SIPRegistrar
import Synchronization

/// The change log of a shared PostgreSQL store (`sip_registrar_changes`) and what replication
/// reads through it. Every commit appends the addresses of record it changed and sends
/// `NOTIFY sip_registrar_bindings`; each node LISTENs, reads the log past the last change it
/// saw, and reloads the addresses of record other nodes changed. After a reconnect the same
/// catch-up query runs, so nothing is missed while a connection was down.
///
/// Log order is commit order: a sequence number is taken at insert, so two transactions
/// could otherwise commit in the opposite order of their numbers, and a reader between the
/// two commits would advance past the earlier number for good. Every commit therefore takes
/// a transaction-scoped advisory lock just before its change-log insert and holds it to
/// COMMIT (``logLock``). This was chosen over tracking holes below the high-water mark:
/// the lock is held only for the last statement and the COMMIT (each node already commits
/// one batch at a time), nodes never wait on each other's row writes through it (it is the
/// last lock a transaction takes, so it cannot deadlock), and readers stay a single
/// `seq > last` query with nothing to re-read.
package final class PostgresChangeLog: Sendable {
    /// The notification channel.
    static let channel = "sip_registrar_bindings"
    /// The advisory lock (`pg_advisory_xact_lock`) that orders change-log inserts by commit.
    static let logLock: Int64 = 7_360_505

    /// What replication wants to hear about.
    package enum Event: Sendable {
        /// A commit waited for the log lock (another node was committing).
        case lockWait
        /// A commit landed after its REGISTER was answered 503: reload these addresses of record.
        case lateCommit([String])
    }

    let client: PostgresClient
    /// This process's name in the `node` column and the change log.
    package let node: String
    let logger: Logger
    /// Up or down, logged once per change.
    package let health: StoreHealth
    /// Addresses of record whose last commit failed or timed out: reloaded from the database once it answers.
    private let suspects = Mutex<Set<String>>([])
    private let observer = Mutex<(@Sendable (Event) -> Void)?>(nil)

    init(client: PostgresClient, node: String, logger: Logger, health: StoreHealth) {
        self.client = client
        self.node = node
        self.logger = logger
        self.health = health
    }

    /// Sets who hears about ``Event``s (replication; nobody before it starts).
    package func observe(_ body: @escaping @Sendable (Event) -> Void) { observer.withLock { $0 = body } }

    func report(_ event: Event) { observer.withLock { $0 }?(event) }

    /// Marks addresses of record to be read back at the next catch-up.
    package func markSuspect(_ aors: some Sequence<String>) { suspects.withLock { $0.formUnion(aors) } }

    /// The addresses of record marked so far, and none left marked.
    package func takeSuspects() -> Set<String> {
        suspects.withLock { s in
            defer { s = [] }
            return s
        }
    }

    /// Appends `aors` to the log and notifies the other nodes, inside a commit's transaction and
    /// as its last statement, under the log lock (see the type's documentation): tried first, so
    /// that a wait is counted. `at` is the clock at insert, just before COMMIT: replication lag is
    /// measured from it.
    func record(_ aors: [String], in tx: PostgresConnection) async throws {
        // The change log and the notification in one statement (a data-modifying WITH always runs).
        var locked = false
        for try await ok in try await tx.query("""
            WITH got AS (SELECT pg_try_advisory_xact_lock(\(Self.logLock)) AS ok),
            logged AS (INSERT INTO sip_registrar_changes (node, aor, at)
                       SELECT \(node), a, clock_timestamp() FROM got, unnest(\(aors)::text[]) AS a WHERE got.ok RETURNING 1)
            SELECT got.ok, (SELECT count(*) FROM logged) FROM got, (SELECT pg_notify(\(Self.channel), \(node))) AS n
            """, logger: logger).decode((Bool, Int64).self) {
            locked = ok.0
        }
        if !locked {
            report(.lockWait)
            _ = try await tx.query("""
                INSERT INTO sip_registrar_changes (node, aor, at)
                SELECT \(node), a, clock_timestamp() FROM (SELECT pg_advisory_xact_lock(\(Self.logLock))) AS l,
                    unnest(\(aors)::text[]) AS a
                """, logger: logger).collect()
        }
    }

    /// The change sequence number a node starts reading after: taken under the log lock, when
    /// every number handed out so far belongs to a finished transaction, so the load that follows
    /// sees all of them. The sequence itself, not the newest row: a log emptied by pruning must
    /// not look like a gap at the first catch-up.
    package func currentSequence() async throws -> Int64 {
        try await client.withConnection { conn in
            try await conn.withTransaction(logger: self.logger) { tx in
                _ = try await tx.query("SELECT pg_advisory_xact_lock(\(Self.logLock))", logger: self.logger).collect()
                var latest: Int64 = 0
                for try await v in try await tx.query("""
                    SELECT GREATEST(COALESCE((SELECT MAX(seq) FROM sip_registrar_changes), 0),
                        COALESCE((SELECT last_value FROM pg_sequences WHERE schemaname = current_schema()
                                  AND sequencename = 'sip_registrar_changes_seq_seq'), 0))
                    """, logger: self.logger).decode(Int64.self) {
                    latest = v
                }
                return latest
            }
        }
    }

    /// LISTENs on a connection of its own until it fails or the task is cancelled: `onChange`
    /// runs once at the start (whatever happened while not listening is read now) and once for
    /// every commit of another node.
    package func listen(onChange: @escaping @Sendable () async -> Void) async throws {
        try await client.withConnection { conn in
            try await conn.listen(on: Self.channel) { notifications in
                await onChange()
                for try await n in notifications where n.payload != self.node {
                    await onChange()
                }
            }
        }
    }

    /// Drops log rows older than ten minutes (a node that was away longer reloads everything).
    package func prune() async throws {
        try await client.query("DELETE FROM sip_registrar_changes WHERE at < now() - interval '10 minutes'")
    }

    /// Runs `body` with one connection for reading the log and the rows it names.
    package func read<T: Sendable>(_ body: @escaping @Sendable (Reader) async throws -> T) async throws -> T {
        try await client.withConnection { conn in try await body(Reader(conn: conn, node: self.node, logger: self.logger)) }
    }

    /// The log and the bindings, read on one connection.
    package struct Reader: Sendable {
        let conn: PostgresConnection
        let node: String
        let logger: Logger

        /// Changes by other nodes after `seq`, in one statement (one snapshot): the addresses of record
        /// with the seconds since their oldest unread commit (database clock), the newest sequence
        /// number, and whether the log no longer reaches back that far (then everything must be
        /// reloaded). This node's own rows are left out in the query, not read and dropped.
        ///
        /// A gap is the oldest retained number beyond `seq + 1`, whatever `seq` is (a node that
        /// started while the log was empty starts at the sequence's value, not at 0). A number taken
        /// by a transaction that then failed is never filled: if the rows before it were pruned too,
        /// that looks like a gap and costs one needless full reload, never a missed change.
        package func changes(after seq: Int64) async throws -> (aors: [(String, Double)], latest: Int64, gap: Bool) {
            var oldest: Int64 = 0
            var latest = seq
            var aors: [(String, Double)] = []
            for try await (o, l, aor, age) in try await conn.query("""
                WITH bounds AS (SELECT COALESCE(MIN(seq), 0) AS oldest, COALESCE(MAX(seq), 0) AS latest FROM sip_registrar_changes)
                SELECT b.oldest, b.latest, c.aor, EXTRACT(EPOCH FROM clock_timestamp() - MIN(c.at))::float8
                FROM bounds b LEFT JOIN sip_registrar_changes c ON c.seq > \(seq) AND c.node <> \(node)
                GROUP BY b.oldest, b.latest, c.aor
                """, logger: logger).decode((Int64, Int64, String?, Double?).self) {
                oldest = o
                latest = max(latest, l)
                if let aor { aors.append((aor, max(0, age ?? 0))) }
            }
            return (aors, latest, oldest > seq + 1)
        }

        /// The stored bindings of `aors`, or every one when nil.
        package func bindings(of aors: [String]?) async throws -> [Binding] {
            try await PostgresBindingTable.fetch(conn, where: aors, logger: logger)
        }
    }
}
