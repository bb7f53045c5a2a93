import Logging
import PostgresNIO

/// The PostgreSQL schema: numbered migrations, applied once each, in order, by one node at a time.
enum PostgresSchema {
    /// Each migration's number and statements, in order (each runs once).
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
    static func migrate(_ client: PostgresClient, logger: Logger) async throws {
        try await client.withConnection { conn in
            _ = try await conn.query("SELECT pg_advisory_lock(7360504)", logger: logger).collect()
            do {
                _ = try await conn.query("CREATE TABLE IF NOT EXISTS sip_registrar_schema (version INTEGER PRIMARY KEY)", logger: logger).collect()
                var current = 0
                for try await v in try await conn.query("SELECT COALESCE(MAX(version), 0) FROM sip_registrar_schema", logger: logger).decode(Int.self) {
                    current = v
                }
                for (version, sql) in migrations where version > current {
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
}

extension Substring {
    /// Without leading and trailing blanks (space, tab, line breaks).
    func trimmingCharacters() -> String {
        let ws: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        guard let a = firstIndex(where: { !ws($0) }), let b = lastIndex(where: { !ws($0) }) else { return "" }
        return String(self[a...b])
    }
}
