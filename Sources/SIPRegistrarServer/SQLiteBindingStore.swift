import GRDB
import SIPMessage
import SIPRegistrar

#if canImport(Glibc)
import Glibc
#endif

/// How hard SQLite makes each commit durable (`store_sync`).
public enum SQLiteSynchronous: String, Sendable, Hashable, CaseIterable {
    /// `PRAGMA synchronous = FULL`: the WAL is synced at every commit, so a commit (and the 200
    /// that follows it) survives a power cut or a kernel crash. The default.
    case full
    /// `PRAGMA synchronous = NORMAL`: synced only at checkpoints; a crash of the process loses
    /// nothing, but a power cut can lose the last commits. Faster; an explicit choice.
    case normal
}

/// The embedded default store: SQLite in WAL mode through GRDB, with a versioned schema
/// and group commit. Concurrent REGISTERs that change bindings at the same time share one
/// transaction; each `apply` returns only once its changes are committed (with
/// `synchronous = FULL` by default, so a 200 OK means "on disk", power cut or not).
public final class SQLiteBindingStore: BindingStore {
    private let pool: DatabasePool
    private let committer: GroupCommitter
    public let path: String
    public let synchronous: SQLiteSynchronous

    /// Opens (creating, with its folder) and migrates the database. A locked, corrupt or
    /// unwritable database is reported with its path and SQLite's reason.
    public init(path: String, synchronous: SQLiteSynchronous = .full) throws(ConfigurationError) {
        self.path = path
        self.synchronous = synchronous
        if let slash = path.lastIndex(of: "/") {
            let dir = String(path[..<slash])
            if !dir.isEmpty { Self.makeDirectories(dir) }
        }
        var config = Configuration()
        config.busyMode = .timeout(2)
        do {
            let pool = try DatabasePool(path: path, configuration: config)
            // On the writer, once the pool is open: GRDB's WAL set-up sets NORMAL on it after
            // any prepareDatabase hook. Only the writer commits, and it lives as long as the pool.
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: synchronous == .full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
            }
            try Self.migrator.migrate(pool)
            // Prove that the file is writable now, not at the first REGISTER.
            try pool.write { db in try db.execute(sql: "UPDATE meta SET value = value WHERE key = 'schema'") }
            self.pool = pool
        } catch {
            throw ConfigurationError("store sqlite:\(path): \(Self.describe(error))")
        }
        self.committer = GroupCommitter(pool: pool)
    }

    /// The `synchronous` setting SQLite reports on the writing connection (0 off, 1 normal, 2 full).
    func currentSynchronousSetting() throws -> Int {
        try pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? DatabaseError {
            return "\(e.message ?? "\(e.resultCode)") (SQLite \(e.resultCode))"
        }
        return "\(error)"
    }

    static func makeDirectories(_ dir: String) {
        var partial = dir.hasPrefix("/") ? "/" : ""
        for part in dir.split(separator: "/") {
            partial += part + "/"
            mkdir(partial, 0o755)
        }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1: bindings") { db in
            try db.execute(sql: """
                CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                INSERT INTO meta (key, value) VALUES ('schema', '1');
                CREATE TABLE bindings (
                    aor TEXT NOT NULL,
                    uri TEXT NOT NULL,
                    scheme INTEGER NOT NULL,
                    q INTEGER,
                    expires_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    call_id TEXT NOT NULL,
                    cseq INTEGER NOT NULL,
                    instance TEXT,
                    reg_id INTEGER,
                    other_params TEXT NOT NULL,
                    path TEXT NOT NULL,
                    user_agent TEXT,
                    transport TEXT NOT NULL,
                    source_host TEXT NOT NULL,
                    source_port INTEGER NOT NULL,
                    flow_id INTEGER,
                    tls_identity TEXT,
                    PRIMARY KEY (aor, uri)
                ) WITHOUT ROWID;
                CREATE INDEX bindings_expiry ON bindings (expires_at);
                """)
        }
        return m
    }

    public func loadAll() async throws -> [Binding] {
        try await pool.read { db in
            // A cursor, not fetchAll: a million rows are never all materialized as GRDB rows at once.
            var out: [Binding] = []
            out.reserveCapacity(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM bindings") ?? 0)
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM bindings")
            while let row = try rows.next() {
                if let b = Self.binding(row) { out.append(b) }
            }
            return out
        }
    }

    public func apply(_ changes: [BindingChange]) async throws {
        guard !changes.isEmpty else { return }
        try await committer.submit(changes)
    }

    /// Rows in the table (for tests and the admin API's health).
    public func count() async throws -> Int {
        try await pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM bindings") ?? 0 }
    }

    static func write(_ changes: [BindingChange], _ db: Database) throws {
        for change in changes {
            switch change {
            case .upsert(let b):
                try db.execute(sql: """
                    INSERT OR REPLACE INTO bindings (aor, uri, scheme, q, expires_at, updated_at, call_id, cseq, instance, reg_id,
                        other_params, path, user_agent, transport, source_host, source_port, flow_id, tls_identity)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, arguments: [b.aor, b.uri, Int(b.scheme.rawValue), b.q, b.expiresAt, b.updatedAt, b.callID, Int(b.cseq),
                                     b.instance, b.regID, b.otherParameters, b.path.joined(separator: "\n"), b.userAgent,
                                     b.transport.rawValue, b.sourceHost, b.sourcePort, b.flowID.map { Int64(bitPattern: $0) },
                                     b.tlsIdentity])
            case .expired(let aor, let uri, let at):
                try db.execute(sql: "DELETE FROM bindings WHERE aor = ? AND uri = ? AND expires_at <= ?", arguments: [aor, uri, at])
            case .remove(let aor, let uri):
                try db.execute(sql: "DELETE FROM bindings WHERE aor = ? AND uri = ?", arguments: [aor, uri])
            }
        }
    }

    static func binding(_ row: Row) -> Binding? {
        guard let aor: String = row["aor"], let uri: String = row["uri"], let schemeRaw: Int = row["scheme"],
              let scheme = ContactScheme(rawValue: UInt8(truncatingIfNeeded: schemeRaw)),
              let transportText: String = row["transport"], let transport = SIPTransportProtocol(token: transportText) else { return nil }
        let pathText: String = row["path"] ?? ""
        let flow: Int64? = row["flow_id"]
        return Binding(aor: aor, uri: uri, scheme: scheme, q: row["q"], expiresAt: row["expires_at"] ?? 0,
                       updatedAt: row["updated_at"] ?? 0, callID: row["call_id"] ?? "", cseq: UInt32(truncatingIfNeeded: row["cseq"] ?? 0),
                       instance: row["instance"], regID: row["reg_id"], otherParameters: row["other_params"] ?? "",
                       path: pathText.isEmpty ? [] : pathText.split(separator: "\n").map(String.init), userAgent: row["user_agent"],
                       transport: transport, sourceHost: row["source_host"] ?? "", sourcePort: row["source_port"] ?? 0,
                       flowID: flow.map { UInt64(bitPattern: $0) }, tlsIdentity: row["tls_identity"])
    }
}

/// Batches concurrent submissions into one transaction. No time limit here, unlike the
/// PostgreSQL committer: each `apply` waits for its transaction's real outcome (a busy
/// database fails within `busyMode`'s 2 s and rolls back), so nothing answered with an
/// error is ever committed later, and there is nothing to withdraw from the queue.
actor GroupCommitter {
    private let pool: DatabasePool
    private var pending: [([BindingChange], CheckedContinuation<Void, any Error>)] = []
    private var draining = false

    init(pool: DatabasePool) { self.pool = pool }

    func submit(_ changes: [BindingChange]) async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            pending.append((changes, c))
            if !draining {
                draining = true
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while !pending.isEmpty {
            let batch = pending
            pending = []
            do {
                try await pool.write { db in
                    for (changes, _) in batch { try SQLiteBindingStore.write(changes, db) }
                }
                for (_, c) in batch { c.resume() }
            } catch {
                for (_, c) in batch { c.resume(throwing: error) }
            }
        }
        draining = false
    }
}
