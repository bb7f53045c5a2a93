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

/// Why an SQLite store could not be opened: one line naming the store and SQLite's reason.
public struct SQLiteStoreError: Error, Sendable, CustomStringConvertible, Equatable {
    /// `store sqlite:PATH: REASON`.
    public let description: String
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
    public init(path: String, synchronous: SQLiteSynchronous = .full) throws(SQLiteStoreError) {
        self.path = path
        self.synchronous = synchronous
        if let slash = path.lastIndex(of: "/") {
            let dir = String(path[..<slash])
            if !dir.isEmpty { Self.makeDirectories(dir) }
        }
        var config = Configuration()
        config.busyMode = .timeout(2)
        let pool: DatabasePool
        do {
            pool = try DatabasePool(path: path, configuration: config)
            // On the writer, once the pool is open: GRDB's WAL set-up sets NORMAL on it after
            // any prepareDatabase hook. Only the writer commits, and it lives as long as the pool.
            try pool.writeWithoutTransaction { db in
                try db.execute(sql: synchronous == .full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
            }
            try SQLiteSchema.migrator.migrate(pool)
            // Prove that the file is writable now, not at the first REGISTER.
            try pool.write { db in try db.execute(sql: "UPDATE meta SET value = value WHERE key = 'schema'") }
        } catch {
            throw SQLiteStoreError(description: "store sqlite:\(path): \(Self.describe(error))")
        }
        self.pool = pool
        // No time limit: each `apply` waits for its transaction's real outcome.
        self.committer = GroupCommitter { batch in
            try await pool.write { db in
                for submission in batch where submission.claim() { try Self.write(submission.changes, db) }
            }
        }
    }

    /// The `synchronous` setting SQLite reports on the writing connection (0 off, 1 normal, 2 full).
    package func currentSynchronousSetting() throws -> Int {
        try pool.write { db in try Int.fetchOne(db, sql: "PRAGMA synchronous") ?? -1 }
    }

    static func describe(_ error: any Error) -> String {
        if let e = error as? DatabaseError {
            return "\(e.message ?? "\(e.resultCode)") (SQLite \(e.resultCode))"
        }
        return "\(error)"
    }

    /// Creates `dir` and its parents (0755), ignoring those that exist.
    package static func makeDirectories(_ dir: String) {
        var partial = dir.hasPrefix("/") ? "/" : ""
        for part in dir.split(separator: "/") {
            partial += part + "/"
            mkdir(partial, 0o755)
        }
    }

    public func loadAll() async throws -> [Binding] {
        try await pool.read { db in
            // A cursor, not fetchAll: a million rows are never all materialized as GRDB rows at once.
            var out: [Binding] = []
            out.reserveCapacity(try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM bindings") ?? 0)
            let rows = try Row.fetchCursor(db, sql: "SELECT * FROM bindings")
            // One copy of the values many rows repeat (User-Agent, node names), each row's own
            // copy freed at once, before the next row reuses its memory (freed after the load,
            // those copies would stay resident as holes between live bindings).
            let shared = StringInterner()
            while let row = try rows.next() {
                if let b = try BindingRow.binding(from: row, writtenBy: .thisProcess, sharing: shared) { out.append(b) }
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

    static let upsertSQL = """
        INSERT OR REPLACE INTO bindings (\(BindingRow.Column.list))
        VALUES (\(BindingRow.Column.allCases.map { _ in "?" }.joined(separator: ", ")))
        """

    static func write(_ changes: [BindingChange], _ db: Database) throws {
        for change in changes {
            switch change {
            case .upsert(let b):
                let values: [(any DatabaseValueConvertible)?] = BindingRow.Column.allCases.map { column in
                    switch BindingRow.value(column, of: b) {
                    case .text(let s): s
                    case .integer(let v): v
                    }
                }
                try db.execute(sql: upsertSQL, arguments: StatementArguments(values))
            case .expired(let aor, let uri, let at):
                try db.execute(sql: "DELETE FROM bindings WHERE aor = ? AND uri = ? AND expires_at <= ?", arguments: [aor, uri, at])
            case .remove(let aor, let uri):
                try db.execute(sql: "DELETE FROM bindings WHERE aor = ? AND uri = ?", arguments: [aor, uri])
            }
        }
    }
}

extension Row: BindingRowReader {
    package func text(_ column: BindingRow.Column) -> String? { self[column.rawValue] }
    package func integer(_ column: BindingRow.Column) -> Int64? { self[column.rawValue] }
}
