import SIPMessage
import SIPRegistrar

/// The stored form of a ``Binding``: the columns every store keeps, their names, their types,
/// and the one encoding of a binding into them and back. A store spells out no column itself:
/// it builds its statements from ``Column`` and reads a row through a ``BindingRowReader``.
package enum BindingRow {
    /// One column of the bindings table, named as in the schema, in schema order.
    package enum Column: String, CaseIterable, Sendable {
        case aor, uri, scheme, q
        case expiresAt = "expires_at", updatedAt = "updated_at", callID = "call_id", cseq, instance
        case regID = "reg_id", otherParams = "other_params", path
        case userAgent = "user_agent", transport
        case sourceHost = "source_host", sourcePort = "source_port", flowID = "flow_id", tlsIdentity = "tls_identity"

        /// How wide a value is (SQLite keeps every integer as INTEGER; PostgreSQL's types differ).
        package enum Kind: Sendable { case text, int16, int32, int64 }

        package var kind: Kind {
            switch self {
            case .aor, .uri, .callID, .instance, .otherParams, .path, .userAgent, .transport, .sourceHost, .tlsIdentity: .text
            case .scheme: .int16
            case .q, .regID, .sourcePort: .int32
            case .expiresAt, .updatedAt, .cseq, .flowID: .int64
            }
        }

        /// Whether the column may be NULL (an optional field of the binding).
        package var isNullable: Bool {
            switch self {
            case .q, .instance, .regID, .userAgent, .flowID, .tlsIdentity: true
            default: false
            }
        }

        /// Part of the primary key (aor, uri).
        package var isKey: Bool { self == .aor || self == .uri }

        /// Every column name, comma-separated, in schema order.
        package static let list = allCases.map(\.rawValue).joined(separator: ", ")
    }

    /// A column's value, before a store maps it to its own types.
    package enum Value: Sendable, Equatable {
        case text(String?)
        case integer(Int64?)
    }

    /// Who wrote a row, which decides what its `flow_id` means.
    package enum Writer: Sendable {
        /// This process (a store only one process uses): the flow id is one of our connections.
        case thisProcess
        /// The named node of a shared store: the flow id is that node's connection (``Binding/remoteFlowID``).
        case node(String)
    }

    /// The value `column` stores for `b`.
    package static func value(_ column: Column, of b: Binding) -> Value {
        switch column {
        case .aor: .text(b.aor)
        case .uri: .text(b.uri)
        case .scheme: .integer(Int64(b.scheme.rawValue))
        case .q: .integer(b.q.map { Int64($0) })
        case .expiresAt: .integer(b.expiresAt)
        case .updatedAt: .integer(b.updatedAt)
        case .callID: .text(b.callID)
        case .cseq: .integer(Int64(b.cseq))
        case .instance: .text(b.instance)
        case .regID: .integer(b.regID.map { Int64($0) })
        case .otherParams: .text(b.otherParameters)
        case .path: .text(b.path.joined(separator: "\n"))
        case .userAgent: .text(b.userAgent)
        case .transport: .text(b.transport.rawValue)
        case .sourceHost: .text(b.sourceHost)
        case .sourcePort: .integer(Int64(b.sourcePort))
        case .flowID: .integer(b.flowID.map { Int64(bitPattern: $0) })
        case .tlsIdentity: .text(b.tlsIdentity)
        }
    }

    /// The binding a row holds; nil when its key, scheme or transport is missing or unknown
    /// (such a row is skipped, never guessed at).
    package static func binding(from row: some BindingRowReader, writtenBy writer: Writer,
                                sharing shared: StringInterner) throws -> Binding? {
        guard let aor = try row.text(.aor), let uri = try row.text(.uri), let schemeRaw = try row.integer(.scheme),
              let scheme = ContactScheme(rawValue: UInt8(truncatingIfNeeded: schemeRaw)),
              let transportText = try row.text(.transport), let transport = SIPTransportProtocol(token: transportText) else { return nil }
        let pathText = try row.text(.path) ?? ""
        let flow = try row.integer(.flowID).map { UInt64(bitPattern: $0) }
        var b = Binding(aor: aor, uri: uri, scheme: scheme, q: try row.integer(.q).map { Int(truncatingIfNeeded: $0) },
                        expiresAt: try row.integer(.expiresAt) ?? 0, updatedAt: try row.integer(.updatedAt) ?? 0,
                        callID: try row.text(.callID) ?? "", cseq: UInt32(truncatingIfNeeded: try row.integer(.cseq) ?? 0),
                        instance: try row.text(.instance), regID: try row.integer(.regID).map { Int(truncatingIfNeeded: $0) },
                        otherParameters: try row.text(.otherParams) ?? "",
                        path: pathText.isEmpty ? [] : pathText.split(separator: "\n").map(String.init),
                        userAgent: try row.text(.userAgent).map(shared.intern), transport: transport, sourceHost: try row.text(.sourceHost) ?? "",
                        sourcePort: Int(truncatingIfNeeded: try row.integer(.sourcePort) ?? 0), tlsIdentity: try row.text(.tlsIdentity))
        switch writer {
        case .thisProcess:
            b.flowID = flow
        case .node(let name):
            // The writer's connection id: meaningful only on that node, where a forwarded request names it.
            b.node = shared.intern(name)
            b.remoteFlowID = flow
        }
        return b
    }
}

extension BindingRow.Value {
    /// The text, when this is a text value.
    package var text: String? { if case .text(let s) = self { s } else { nil } }
    /// The integer, when this is an integer value.
    package var integer: Int64? { if case .integer(let v) = self { v } else { nil } }
}

/// Reads one stored row's columns, in a store's own row type.
package protocol BindingRowReader {
    /// A text column's value (nil: NULL).
    func text(_ column: BindingRow.Column) throws -> String?
    /// An integer column's value (nil: NULL).
    func integer(_ column: BindingRow.Column) throws -> Int64?
}
