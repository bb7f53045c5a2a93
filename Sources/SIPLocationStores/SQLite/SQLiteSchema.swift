import GRDB

/// The SQLite schema: GRDB's numbered migrations.
enum SQLiteSchema {
    /// Every migration, in order (each runs once).
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
}
