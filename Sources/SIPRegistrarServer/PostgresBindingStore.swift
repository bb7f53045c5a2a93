import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import SIPMessage
import SIPRegistrar
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where a PostgreSQL store connects: parsed from `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=...]`.
/// The password should come from the environment or a file, not the URL.
public struct PostgresLocation: Sendable, Hashable {
    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    /// `disable`, `prefer` (the default) or `require`.
    public var sslMode: String
    /// Whether the URL said `sslmode=` at all.
    public var sslModeGiven = false

    /// A host other than this machine without `sslmode`: `prefer` stays the default (a database
    /// without TLS keeps working), but start-up warns, since `prefer` falls back to a plain
    /// connection whenever TLS is refused, which a man in the middle can arrange.
    public var unencryptedToAnotherHost: Bool {
        !sslModeGiven && !Self.isLoopback(host)
    }

    /// `localhost`, 127.0.0.0/8, `::1` (and a Unix socket folder, which never leaves the machine).
    static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        if h == "localhost" || h.hasSuffix(".localhost") || h.hasPrefix("/") || h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    public init?(url: String) {
        var rest = Substring(url)
        if rest.hasPrefix("postgres://") { rest = rest.dropFirst(11) } else if rest.hasPrefix("postgresql://") { rest = rest.dropFirst(13) } else { return nil }
        var query = ""
        if let q = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: q)...])
            rest = rest[..<q]
        }
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        database = String(rest[rest.index(after: slash)...])
        var authority = rest[..<slash]
        user = "postgres"
        password = nil
        if let at = authority.lastIndex(of: "@") {
            let info = authority[..<at]
            if let colon = info.firstIndex(of: ":") {
                user = Self.decode(info[..<colon])
                password = Self.decode(info[info.index(after: colon)...])
            } else {
                user = Self.decode(info)
            }
            authority = authority[authority.index(after: at)...]
        }
        port = 5432
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()) else { return nil }
                port = p
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]) else { return nil }
            port = p
        } else {
            host = String(authority)
        }
        sslMode = "prefer"
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2 && kv[0] == "sslmode" {
                sslMode = String(kv[1])
                sslModeGiven = true
            }
        }
        guard !host.isEmpty, !database.isEmpty, !user.isEmpty, (1...65_535).contains(port),
              ["disable", "prefer", "require"].contains(sslMode) else { return nil }
    }

    static func decode(_ s: Substring) -> String { s.removingPercentEncoding() }
}

extension Substring {
    func removingPercentEncoding() -> String {
        var out: [UInt8] = []
        var i = utf8.startIndex
        while i != utf8.endIndex {
            let c = utf8[i]
            if c == UInt8(ascii: "%"), let h1 = utf8.index(i, offsetBy: 1, limitedBy: utf8.endIndex), h1 != utf8.endIndex,
               let h2 = utf8.index(h1, offsetBy: 1, limitedBy: utf8.endIndex), h2 != utf8.endIndex,
               let v = UInt8(String(decoding: [utf8[h1], utf8[h2]], as: UTF8.self), radix: 16) {
                out.append(v)
                i = utf8.index(after: h2)
            } else {
                out.append(c)
                i = utf8.index(after: i)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The store for several registrar nodes: bindings in PostgreSQL, one row per
/// (aor, uri), written with group commit (a 200 only after COMMIT). Every commit also
/// appends to a change log and sends `NOTIFY sip_registrar_bindings`; each node
/// LISTENs, reads the log past the last change it saw, and reloads the addresses
/// of record other nodes changed (``PostgresReplication``). After a reconnect the same
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
public final class PostgresBindingStore: BindingStore, Sendable {
    static let channel = "sip_registrar_bindings"
    let client: PostgresClient
    let location: PostgresLocation
    /// This process's name in the `node` column and the change log.
    public let node: String
    let logger: Logger
    let committer: PostgresGroupCommitter
    /// How long a commit may take before the REGISTER is answered 503.
    let commitTimeout: Duration
    /// Addresses of record whose last commit failed or timed out: reloaded from the database once it answers.
    let suspect = Mutex<Set<String>>([])
    /// Up or down, logged once per change.
    let health: StoreHealth
    /// The advisory lock (`pg_advisory_xact_lock`) that orders change-log inserts by commit.
    static let logLock: Int64 = 7_360_505
    /// What replication wants to hear about: lock waits (metrics) and commits that landed after
    /// their REGISTER was answered 503 (reload those addresses of record).
    let events = Mutex<(@Sendable (StoreEvent) -> Void)?>(nil)
    /// Test only: `SIP_REGISTRAR_TEST_COMMIT_DELAY_MS=PATTERN=MS` makes a commit that stores a binding
    /// of an address of record containing PATTERN wait MS milliseconds after its change-log insert,
    /// before COMMIT, to force commits out of order or past the committer's limit (removals are
    /// never delayed). Nil (nothing happens) unless the variable is set.
    let testCommitDelay: (pattern: String, delay: Duration)?

    enum StoreEvent {
        case lockWait
        case lateCommit([String])
    }

    func report(_ event: StoreEvent) { events.withLock { $0 }?(event) }

    /// Parses `PATTERN=MS` (or `MS` alone: every commit).
    static func parseTestCommitDelay(_ text: String?) -> (pattern: String, delay: Duration)? {
        guard let text, !text.isEmpty else { return nil }
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        let pattern = parts.count == 2 ? parts[0] : ""
        guard let ms = Int(parts.count == 2 ? parts[1] : parts[0]), ms > 0 else { return nil }
        return (pattern, .milliseconds(ms))
    }

    init(location: PostgresLocation, node: String, logger: Logger, commitTimeout: Duration = .seconds(3),
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
        var background = logger
        background.logLevel = max(logger.logLevel, .warning)
        self.client = PostgresClient(configuration: config, backgroundLogger: background)
        self.committer = PostgresGroupCommitter()
        self.testCommitDelay = Self.parseTestCommitDelay(getenv("SIP_REGISTRAR_TEST_COMMIT_DELAY_MS").map { String(cString: $0) })
    }

    /// Runs the connection pool until cancelled (it must run for any query to work).
    func runClient() async { await client.run() }

    /// The change sequence number a node starts reading after: taken under the log lock, when
    /// every number handed out so far belongs to a finished transaction, so the load that follows
    /// sees all of them. The sequence itself, not the newest row: a log emptied by pruning must
    /// not look like a gap at the first catch-up.
    func currentSequence() async throws -> Int64 {
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

    var description: String { "postgres://\(location.user)@\(location.host):\(location.port)/\(location.database)" }

    // MARK: Schema

    static let migrations: [(Int, String)] = [
        (1, """
            CREATE TABLE IF NOT EXISTS sip_registrar_bindings (
                aor TEXT NOT NULL,
                uri TEXT NOT NULL,
                scheme SMALLINT NOT NULL,
                q INTEGER,
                expires_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                call_id TEXT NOT NULL,
                cseq BIGINT NOT NULL,
                instance TEXT,
                reg_id INTEGER,
                other_params TEXT NOT NULL,
                path TEXT NOT NULL,
                user_agent TEXT,
                transport TEXT NOT NULL,
                source_host TEXT NOT NULL,
                source_port INTEGER NOT NULL,
                flow_id BIGINT,
                tls_identity TEXT,
                node TEXT NOT NULL,
                PRIMARY KEY (aor, uri)
            );
            CREATE INDEX IF NOT EXISTS sip_registrar_bindings_expiry ON sip_registrar_bindings (expires_at);
            CREATE TABLE IF NOT EXISTS sip_registrar_changes (
                seq BIGSERIAL PRIMARY KEY,
                node TEXT NOT NULL,
                aor TEXT NOT NULL,
                at TIMESTAMPTZ NOT NULL DEFAULT now()
            );
            CREATE INDEX IF NOT EXISTS sip_registrar_changes_at ON sip_registrar_changes (at);
            """),
        // Where each node is reached (node_address), refreshed as a heartbeat.
        (2, """
            CREATE TABLE IF NOT EXISTS sip_registrar_nodes (
                node TEXT PRIMARY KEY,
                address TEXT NOT NULL,
                seen_at TIMESTAMPTZ NOT NULL
            );
            """),
    ]

    /// Creates or upgrades the schema, one node at a time (an advisory lock), and proves the database answers.
    public func migrate() async throws {
        try await client.withConnection { conn in
            _ = try await conn.query("SELECT pg_advisory_lock(7360504)", logger: logger).collect()
            do {
                _ = try await conn.query("CREATE TABLE IF NOT EXISTS sip_registrar_schema (version INTEGER PRIMARY KEY)", logger: logger).collect()
                var current = 0
                for try await v in try await conn.query("SELECT COALESCE(MAX(version), 0) FROM sip_registrar_schema", logger: logger).decode(Int.self) {
                    current = v
                }
                for (version, sql) in Self.migrations where version > current {
                    try await conn.withTransaction(logger: logger) { tx in
                        for statement in sql.split(separator: ";").map({ $0.trimmingCharacters() }) where !statement.isEmpty {
                            _ = try await tx.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
                        }
                        _ = try await tx.query("INSERT INTO sip_registrar_schema (version) VALUES (\(version))", logger: logger).collect()
                    }
                }
            } catch {
                _ = try? await conn.query("SELECT pg_advisory_unlock(7360504)", logger: logger).collect()
                throw error
            }
            _ = try await conn.query("SELECT pg_advisory_unlock(7360504)", logger: logger).collect()
        }
    }

    // MARK: BindingStore

    public func loadAll() async throws -> [Binding] {
        try await withTimeout(.seconds(30)) { [self] in
            try await client.withConnection { conn in try await self.fetch(conn, where: nil) }
        }
    }

    /// Waits `commitTimeout` at most for a submission still queued: then it is withdrawn and can
    /// never land (a 503 means "not stored"). One already sent to the database cannot be taken
    /// back, so its REGISTER waits for the real outcome (bounded by the committer's own limit).
    public func apply(_ changes: [BindingChange]) async throws {
        guard !changes.isEmpty else { return }
        let submission = CommitSubmission(changes)
        await committer.enqueue(submission, store: self)
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
            let aors = Set(changes.map(\.aor))
            suspect.withLock { $0.formUnion(aors) }
            throw error
        }
    }

    /// One transaction for a batch of submissions, then one notification. Submissions withdrawn
    /// while the connection was awaited are left out; the others are claimed (no longer withdrawable)
    /// before the first statement is sent.
    func commit(_ batch: [CommitSubmission]) async throws {
        try await client.withConnection { [self] conn in
            let live = batch.filter { $0.claim() }
            guard !live.isEmpty else { return }
            try await commit(CommitPlan(live.flatMap(\.changes)), on: conn)
        }
    }

    private func commit(_ plan: CommitPlan, on conn: PostgresConnection) async throws {
        try await conn.withTransaction(logger: logger) { [self] tx in
            // One statement per kind of change for the whole batch: round trips, not rows, are what a commit costs.
            if !plan.upserts.isEmpty {
                let u = plan.upserts
                // One element type per array: -1 and '' stand for NULL there, and NULLIF restores it.
                let aors = u.map(\.aor), uris = u.map(\.uri), schemes = u.map { Int16($0.scheme.rawValue) }
                let qs = u.map { Int32($0.q ?? -1) }, expires = u.map(\.expiresAt), updated = u.map(\.updatedAt)
                let callIDs = u.map(\.callID), cseqs = u.map { Int64($0.cseq) }, instances = u.map { $0.instance ?? "" }
                let regIDs = u.map { Int32($0.regID ?? -1) }, others = u.map(\.otherParameters)
                let paths = u.map { $0.path.joined(separator: "\n") }, agents = u.map { $0.userAgent ?? "" }
                let transports = u.map(\.transport.rawValue), hosts = u.map(\.sourceHost), ports = u.map { Int32($0.sourcePort) }
                let flows = u.map { $0.flowID.map { Int64(bitPattern: $0) } ?? -1 }, identities = u.map { $0.tlsIdentity ?? "" }
                _ = try await tx.query("""
                    INSERT INTO sip_registrar_bindings (aor, uri, scheme, q, expires_at, updated_at, call_id, cseq, instance, reg_id,
                        other_params, path, user_agent, transport, source_host, source_port, flow_id, tls_identity, node)
                    SELECT aor, uri, scheme, NULLIF(q, -1), expires_at, updated_at, call_id, cseq, NULLIF(instance, ''),
                        NULLIF(reg_id, -1), other_params, path, NULLIF(user_agent, ''), transport, source_host, source_port,
                        NULLIF(flow_id, -1), NULLIF(tls_identity, ''), \(node)
                    FROM unnest(\(aors)::text[], \(uris)::text[], \(schemes)::int2[], \(qs)::int4[], \(expires)::int8[],
                        \(updated)::int8[], \(callIDs)::text[], \(cseqs)::int8[], \(instances)::text[], \(regIDs)::int4[],
                        \(others)::text[], \(paths)::text[], \(agents)::text[], \(transports)::text[], \(hosts)::text[],
                        \(ports)::int4[], \(flows)::int8[], \(identities)::text[])
                        AS x(aor, uri, scheme, q, expires_at, updated_at, call_id, cseq, instance, reg_id, other_params, path,
                             user_agent, transport, source_host, source_port, flow_id, tls_identity)
                    ON CONFLICT (aor, uri) DO UPDATE SET scheme = EXCLUDED.scheme, q = EXCLUDED.q, expires_at = EXCLUDED.expires_at,
                        updated_at = EXCLUDED.updated_at, call_id = EXCLUDED.call_id, cseq = EXCLUDED.cseq, instance = EXCLUDED.instance,
                        reg_id = EXCLUDED.reg_id, other_params = EXCLUDED.other_params, path = EXCLUDED.path,
                        user_agent = EXCLUDED.user_agent, transport = EXCLUDED.transport, source_host = EXCLUDED.source_host,
                        source_port = EXCLUDED.source_port, flow_id = EXCLUDED.flow_id, tls_identity = EXCLUDED.tls_identity,
                        node = EXCLUDED.node
                    """, logger: logger).collect()
            }
            if !plan.removals.isEmpty {
                let aors = plan.removals.map(\.aor), uris = plan.removals.map(\.uri)
                _ = try await tx.query("""
                    DELETE FROM sip_registrar_bindings b USING unnest(\(aors)::text[], \(uris)::text[]) AS x(aor, uri)
                    WHERE b.aor = x.aor AND b.uri = x.uri
                    """, logger: logger).collect()
            }
            if !plan.expiries.isEmpty {
                let aors = plan.expiries.map(\.aor), uris = plan.expiries.map(\.uri), ats = plan.expiries.map(\.at)
                _ = try await tx.query("""
                    DELETE FROM sip_registrar_bindings b USING unnest(\(aors)::text[], \(uris)::text[], \(ats)::int8[]) AS x(aor, uri, at)
                    WHERE b.aor = x.aor AND b.uri = x.uri AND b.expires_at <= x.at
                    """, logger: logger).collect()
            }
            // The change log and the notification in one statement (a data-modifying WITH always runs),
            // under the log lock (see the type's documentation): tried first, so that a wait is counted.
            // `at` is the clock at insert, just before COMMIT: replication lag is measured from it.
            var locked = false
            for try await ok in try await tx.query("""
                WITH got AS (SELECT pg_try_advisory_xact_lock(\(Self.logLock)) AS ok),
                logged AS (INSERT INTO sip_registrar_changes (node, aor, at)
                           SELECT \(node), a, clock_timestamp() FROM got, unnest(\(plan.aors)::text[]) AS a WHERE got.ok RETURNING 1)
                SELECT got.ok, (SELECT count(*) FROM logged) FROM got, (SELECT pg_notify(\(Self.channel), \(node))) AS n
                """, logger: logger).decode((Bool, Int64).self) {
                locked = ok.0
            }
            if !locked {
                report(.lockWait)
                _ = try await tx.query("""
                    INSERT INTO sip_registrar_changes (node, aor, at)
                    SELECT \(node), a, clock_timestamp() FROM (SELECT pg_advisory_xact_lock(\(Self.logLock))) AS l,
                        unnest(\(plan.aors)::text[]) AS a
                    """, logger: logger).collect()
            }
            if let hook = testCommitDelay, plan.upserts.contains(where: { hook.pattern.isEmpty || $0.aor.contains(hook.pattern) }) {
                // In the database, as a slow server would be: cancelling the task does not shorten it.
                let seconds = Double(hook.delay.nanosecondsValue) / 1e9
                _ = try await tx.query("SELECT pg_sleep(\(seconds))", logger: logger).collect()
            }
        }
    }

    // MARK: Reading

    static let columns = """
        aor, uri, scheme, q, expires_at, updated_at, call_id, cseq, instance, reg_id, other_params, path, user_agent,
        transport, source_host, source_port, flow_id, tls_identity, node
        """

    func fetch(_ conn: PostgresConnection, where aors: [String]?) async throws -> [Binding] {
        let rows: PostgresRowSequence
        if let aors {
            rows = try await conn.query("SELECT \(unescaped: Self.columns) FROM sip_registrar_bindings WHERE aor = ANY(\(aors))",
                                        logger: logger)
        } else {
            rows = try await conn.query("SELECT \(unescaped: Self.columns) FROM sip_registrar_bindings", logger: logger)
        }
        var out: [Binding] = []
        for try await row in rows {
            if let b = try Self.binding(row.makeRandomAccess()) { out.append(b) }
        }
        return out
    }

    static func binding(_ r: PostgresRandomAccessRow) throws -> Binding? {
        let transportText = try r["transport"].decode(String.self)
        guard let transport = SIPTransportProtocol(token: transportText),
              let scheme = ContactScheme(rawValue: UInt8(truncatingIfNeeded: try r["scheme"].decode(Int16.self))) else { return nil }
        let path = try r["path"].decode(String.self)
        return Binding(aor: try r["aor"].decode(String.self), uri: try r["uri"].decode(String.self), scheme: scheme,
                       q: try r["q"].decode(Int?.self), expiresAt: try r["expires_at"].decode(Int64.self),
                       updatedAt: try r["updated_at"].decode(Int64.self), callID: try r["call_id"].decode(String.self),
                       cseq: UInt32(truncatingIfNeeded: try r["cseq"].decode(Int64.self)), instance: try r["instance"].decode(String?.self),
                       regID: try r["reg_id"].decode(Int?.self), otherParameters: try r["other_params"].decode(String.self),
                       path: path.isEmpty ? [] : path.split(separator: "\n").map(String.init),
                       userAgent: try r["user_agent"].decode(String?.self), transport: transport,
                       sourceHost: try r["source_host"].decode(String.self), sourcePort: try r["source_port"].decode(Int.self),
                       flowID: nil, tlsIdentity: try r["tls_identity"].decode(String?.self), node: try r["node"].decode(String.self),
                       // The writer's connection id: meaningful only on that node, where a forwarded request names it.
                       remoteFlowID: try r["flow_id"].decode(Int64?.self).map { UInt64(bitPattern: $0) })
    }

    /// Changes by other nodes after `seq`, in one statement (one snapshot): the addresses of record
    /// with the seconds since their oldest unread commit (database clock), the newest sequence
    /// number, and whether the log no longer reaches back that far (then everything must be
    /// reloaded). This node's own rows are left out in the query, not read and dropped.
    ///
    /// A gap is the oldest retained number beyond `seq + 1`, whatever `seq` is (a node that
    /// started while the log was empty starts at the sequence's value, not at 0). A number taken
    /// by a transaction that then failed is never filled: if the rows before it were pruned too,
    /// that looks like a gap and costs one needless full reload, never a missed change.
    func changes(after seq: Int64, _ conn: PostgresConnection) async throws -> (aors: [(String, Double)], latest: Int64, gap: Bool) {
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
}

extension Substring {
    func trimmingCharacters() -> String {
        let ws: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let a = firstIndex(where: { !ws($0) }), let b = lastIndex(where: { !ws($0) }) else { return "" }
        return String(self[a...b])
    }
}

/// A batch reduced to its effect: the last change to each (aor, uri) wins, in order, so one
/// statement per kind never touches a row twice (ON CONFLICT forbids that).
struct CommitPlan {
    struct Key: Hashable {
        var aor: String
        var uri: String
    }

    enum Effect {
        case upsert(Binding)
        case remove
        case expire(at: Int64)
    }

    var upserts: [Binding] = []
    var removals: [Key] = []
    var expiries: [(aor: String, uri: String, at: Int64)] = []
    var aors: [String] = []

    init(_ batch: [BindingChange]) {
        var effects: [Key: Effect] = [:]
        var order: [Key] = []
        for change in batch {
            let key: Key
            let next: Effect
            switch change {
            case .upsert(let b):
                key = Key(aor: b.aor, uri: b.uri)
                next = .upsert(b)
            case .remove(let aor, let uri):
                key = Key(aor: aor, uri: uri)
                next = .remove
            case .expired(let aor, let uri, let at):
                key = Key(aor: aor, uri: uri)
                switch effects[key] {
                case .upsert(let b)?: next = b.expiresAt <= at ? .remove : .upsert(b)
                case .remove?: next = .remove
                case .expire(let earlier)?: next = .expire(at: max(earlier, at))
                case nil: next = .expire(at: at)
                }
            }
            if effects[key] == nil { order.append(key) }
            effects[key] = next
        }
        var seen = Set<String>()
        for key in order {
            switch effects[key] {
            case .upsert(let b)?: upserts.append(b)
            case .remove?: removals.append(key)
            case .expire(let at)?: expiries.append((key.aor, key.uri, at))
            case nil: break
            }
            if seen.insert(key.aor).inserted { aors.append(key.aor) }
        }
    }
}

/// One REGISTER's changes on their way to the database. While queued (or while its batch
/// waits for a connection) it can be withdrawn: its REGISTER timed out and was answered 503,
/// so it must never land later. Once claimed by a batch about to send it, it cannot be
/// withdrawn and its REGISTER waits for the outcome.
final class CommitSubmission: Sendable {
    let changes: [BindingChange]

    private enum Status { case queued, sent, finished }

    private struct State {
        var status = Status.queued
        var result: Result<Void, any Error>?
        var waiter: CheckedContinuation<Void, any Error>?

        /// Records the outcome; returns the waiter to resume outside the lock.
        mutating func finish(_ r: Result<Void, any Error>) -> CheckedContinuation<Void, any Error>? {
            status = .finished
            result = r
            defer { waiter = nil }
            return waiter
        }
    }

    private let state = Mutex(State())

    init(_ changes: [BindingChange]) { self.changes = changes }

    /// Queued → sent. False if it was withdrawn meanwhile (leave it out of the batch).
    func claim() -> Bool {
        state.withLock { s in
            guard s.status == .queued else { return false }
            s.status = .sent
            return true
        }
    }

    /// Claimed by a batch and not finished yet: its statements may be on their way.
    var isSent: Bool { state.withLock { $0.status == .sent } }

    /// Queued → finished with `error`; nothing once it was sent.
    func withdraw(_ error: any Error) {
        let c = state.withLock { s -> CheckedContinuation<Void, any Error>? in
            guard s.status == .queued else { return nil }
            return s.finish(.failure(error))
        }
        c?.resume(throwing: error)
    }

    /// The outcome of the commit (nothing if already finished, e.g. withdrawn).
    func finish(_ result: Result<Void, any Error>) {
        let c = state.withLock { s -> CheckedContinuation<Void, any Error>? in
            guard s.status != .finished else { return nil }
            return s.finish(result)
        }
        c?.resume(with: result)
    }

    func wait() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let done = state.withLock { s -> Result<Void, any Error>? in
                if let r = s.result { return r }
                s.waiter = c
                return nil
            }
            if let done { c.resume(with: done) }
        }
    }
}

/// Batches concurrent submissions into one transaction (as the SQLite store does), one batch
/// at a time.
actor PostgresGroupCommitter {
    private var pending: [CommitSubmission] = []
    private var draining = false

    func enqueue(_ submission: CommitSubmission, store: PostgresBindingStore) {
        pending.append(submission)
        if !draining {
            draining = true
            Task { await self.drain(store) }
        }
    }

    private func drain(_ store: PostgresBindingStore) async {
        while !pending.isEmpty {
            let batch = pending
            pending = []
            // The waiters are answered within a limit. A commit given up on may still land: whichever
            // of the two sides comes second reports it, so that the addresses of record are read back.
            let race = CommitRace()
            let aors = Array(Set(batch.flatMap { $0.changes.map(\.aor) }))
            let work = Task {
                try await store.commit(batch)
                if race.state.withLock({ r -> Bool in r.landed = true; return r.gaveUp }) { store.report(.lateCommit(aors)) }
            }
            do {
                _ = try await withTimeout(store.commitTimeout + .seconds(2)) {
                    try await work.value
                    return true
                }
                for s in batch { s.finish(.success(())) }
            } catch {
                if race.state.withLock({ r -> Bool in r.gaveUp = true; return r.landed }) { store.report(.lateCommit(aors)) }
                store.logger.debug("commit failed", metadata: ["error": "\(describePostgresError(error))", "changes": "\(batch.count)"])
                // Those not sent yet never will be (a connection never came): then nothing is on its way.
                for s in batch { s.withdraw(error) }
                let sent = batch.contains { $0.isSent }
                for s in batch { s.finish(.failure(error)) }
                guard sent else {
                    work.cancel()
                    continue
                }
                // The next batch waits until this one has really finished, so that a commit landing late
                // cannot overtake one submitted after it (an unregister, say); meanwhile new submissions
                // are withdrawn at their own limit (503). Bounded too, at twice the first limit: a
                // connection can hang for good (seen when the server restarts), and that must not stop
                // this node from committing once the database answers again.
                do {
                    _ = try await withTimeout(store.commitTimeout + .seconds(2)) {
                        try await work.value
                        return true
                    }
                } catch is StoreTimeout {
                    work.cancel()
                    store.logger.warning("a commit did not finish in time; later commits go ahead of it")
                } catch {
                    // It finished, failing: nothing landed.
                }
            }
        }
        draining = false
    }
}

/// Whether a commit landed and whether its committer gave up waiting for it.
final class CommitRace: Sendable {
    let state = Mutex((landed: false, gaveUp: false))
}

/// A time limit for a database call: a PostgreSQL that does not answer must turn into a
/// 503 within seconds, not a REGISTER that hangs.
struct StoreTimeout: Error, CustomStringConvertible {
    var description: String { "the database did not answer in time" }
}

func withTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    // Unstructured on purpose: a task group would wait for the work to notice cancellation,
    // and a connection lease against a database that is down does not.
    let race = TimeoutRace<T>()
    return try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        race.arm(c)
        let work = Task {
            do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
        }
        let timer = Task {
            try? await Task.sleep(for: limit)
            if race.finish(.failure(StoreTimeout())) { work.cancel() }
        }
        race.onFinish { timer.cancel() }
    }
}

/// Whichever of work and timer finishes first resumes the caller; the other is ignored.
final class TimeoutRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var done = false
        var onFinish: (@Sendable () -> Void)?
    }

    private let state = Mutex<State>(State())

    func arm(_ c: CheckedContinuation<T, any Error>) { state.withLock { $0.continuation = c } }

    func onFinish(_ body: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { s -> Bool in
            if s.done { return true }
            s.onFinish = body
            return false
        }
        if runNow { body() }
    }

    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let (c, hook) = state.withLock { s -> (CheckedContinuation<T, any Error>?, (@Sendable () -> Void)?) in
            guard !s.done else { return (nil, nil) }
            s.done = true
            defer { s.continuation = nil; s.onFinish = nil }
            return (s.continuation, s.onFinish)
        }
        guard let c else { return false }
        c.resume(with: result)
        hook?()
        return true
    }
}
