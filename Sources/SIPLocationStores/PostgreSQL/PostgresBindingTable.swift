import Logging
import PostgresNIO
import SIPRegistrar

/// The bindings table of the PostgreSQL store (`sip_registrar_bindings`): its statements, built
/// from ``BindingRow``'s columns, plus the `node` column that names each row's writer.
enum PostgresBindingTable {
    /// The columns a read selects: the binding's, then its writer.
    static let selected = BindingRow.Column.list + ", node"

    /// The binding rows of `aors` (every row when nil), rows that do not decode left out.
    static func fetch(_ conn: PostgresConnection, where aors: [String]?, logger: Logger) async throws -> [Binding] {
        let rows: PostgresRowSequence
        if let aors {
            rows = try await conn.query("SELECT \(unescaped: selected) FROM sip_registrar_bindings WHERE aor = ANY(\(aors))",
                                        logger: logger)
        } else {
            rows = try await conn.query("SELECT \(unescaped: selected) FROM sip_registrar_bindings", logger: logger)
        }
        var out: [Binding] = []
        // One copy of the values many rows repeat (User-Agent, node names): see SQLiteBindingStore.loadAll.
        let shared = StringInterner()
        for try await row in rows {
            let r = row.makeRandomAccess()
            if let b = try BindingRow.binding(from: r, writtenBy: .node(try r["node"].decode(String.self)), sharing: shared) {
                out.append(b)
            }
        }
        return out
    }

    /// The statement of ``upsert(_:node:)``: one array per column, unnested into rows. One element
    /// type per array: -1 and '' stand for NULL there, and NULLIF restores it.
    static let upsertSQL: String = {
        let columns = BindingRow.Column.allCases
        let values = columns.map { c in
            c.isNullable ? "NULLIF(\(c.rawValue), \(c.kind == .text ? "''" : "-1"))" : c.rawValue
        }
        let arrays = columns.enumerated().map { i, c in "$\(i + 1)::\(c.postgresArrayType)" }
        let updates = columns.filter { !$0.isKey }.map { "\($0.rawValue) = EXCLUDED.\($0.rawValue)" } + ["node = EXCLUDED.node"]
        return """
            INSERT INTO sip_registrar_bindings (\(BindingRow.Column.list), node)
            SELECT \(values.joined(separator: ", ")), $\(columns.count + 1)
            FROM unnest(\(arrays.joined(separator: ", "))) AS x(\(BindingRow.Column.list))
            ON CONFLICT (aor, uri) DO UPDATE SET \(updates.joined(separator: ", "))
            """
    }()

    /// One statement that inserts or replaces every binding of `bindings` (no (aor, uri) twice), written by `node`.
    static func upsert(_ bindings: [Binding], node: String) throws -> PostgresQuery {
        var binds = PostgresBindings(capacity: BindingRow.Column.allCases.count + 1)
        for column in BindingRow.Column.allCases {
            let values = bindings.map { BindingRow.value(column, of: $0) }
            switch column.kind {
            case .text: try binds.append(values.map { $0.text ?? "" })
            case .int16: try binds.append(values.map { Int16($0.integer ?? -1) })
            case .int32: try binds.append(values.map { Int32($0.integer ?? -1) })
            case .int64: try binds.append(values.map { $0.integer ?? -1 })
            }
        }
        try binds.append(node)
        return PostgresQuery(unsafeSQL: upsertSQL, binds: binds)
    }
}

extension BindingRow.Column {
    /// The PostgreSQL array type a batch of this column's values is sent as.
    var postgresArrayType: String {
        switch kind {
        case .text: "text[]"
        case .int16: "int2[]"
        case .int32: "int4[]"
        case .int64: "int8[]"
        }
    }
}

extension PostgresRandomAccessRow: BindingRowReader {
    package func text(_ column: BindingRow.Column) throws -> String? { try self[column.rawValue].decode(String?.self) }
    package func integer(_ column: BindingRow.Column) throws -> Int64? { try self[column.rawValue].decode(Int64?.self) }
}
