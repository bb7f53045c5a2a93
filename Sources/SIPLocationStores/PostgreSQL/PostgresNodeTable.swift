import Logging
import PostgresNIO

/// The nodes table of a shared PostgreSQL store (`sip_registrar_nodes`, migration 2): where
/// each node is reached (`node_address`), refreshed as a heartbeat.
package struct PostgresNodeTable: Sendable {
    /// One node as the table shows it.
    package struct Row: Sendable, Equatable {
        package var node: String
        /// The address it published (a SIP URI, as configured).
        package var address: String
        /// Seconds since it last refreshed its row (database clock).
        package var age: Double
    }

    let client: PostgresClient
    /// This process's name in the table.
    package let node: String
    let logger: Logger

    /// Publishes this node's address (when it has one) and reads every node seen in the last
    /// ten minutes, on one connection.
    package func refresh(publishing address: String?) async throws -> [Row] {
        try await client.withConnection { conn in
            if let address {
                _ = try await conn.query("""
                    INSERT INTO sip_registrar_nodes (node, address, seen_at) VALUES (\(self.node), \(address), now())
                    ON CONFLICT (node) DO UPDATE SET address = EXCLUDED.address, seen_at = EXCLUDED.seen_at
                    """, logger: self.logger).collect()
            }
            var rows: [Row] = []
            for try await (node, text, age) in try await conn.query("""
                SELECT node, address, EXTRACT(EPOCH FROM now() - seen_at)::float8 FROM sip_registrar_nodes
                WHERE seen_at > now() - interval '10 minutes'
                """, logger: self.logger).decode((String, String, Double).self) {
                rows.append(Row(node: node, address: text, age: age))
            }
            return rows
        }
    }
}
