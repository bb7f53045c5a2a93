// The compact forms a `Binding` keeps its fields in, so that a million bindings fit
// in well under 500 bytes each: a REGISTER's usual values take no heap of their own,
// and the fields most bindings never set share one optional box.

/// An RFC 5626 `+sip.instance` value (unquoted). The form softphones send, `<urn:uuid:…>`
/// with the RFC 4122 lowercase hex digits, is kept as its 128 bits: 16 bytes inside the
/// binding instead of a 96-byte string of its own. Anything else is kept as text, so every
/// value reads back exactly as it was registered.
enum InstanceID: Sendable, Hashable {
    case uuid(UInt64, UInt64)
    case text(String)

    init(_ text: String) {
        if let (high, low) = Self.uuidBits(text) {
            self = .uuid(high, low)
        } else {
            self = .text(text)
        }
    }

    /// The value as registered.
    var text: String {
        switch self {
        case .text(let s): return s
        case .uuid(let high, let low): return Self.format(high, low)
        }
    }

    private static let prefix = Array("<urn:uuid:".utf8)
    /// `<urn:uuid:` + 8-4-4-4-12 hex digits + `>`.
    private static let length = 47
    private static func isDash(_ i: Int) -> Bool { i == 8 || i == 13 || i == 18 || i == 23 }

    /// The 128 bits of a lowercase `<urn:uuid:…>`, or nil for any other text.
    static func uuidBits(_ text: String) -> (UInt64, UInt64)? {
        guard text.utf8.count == length else { return nil }
        var native = text
        native.makeContiguousUTF8()  // a no-op for the strings the parser makes
        return native.utf8.withContiguousStorageIfAvailable(parse) ?? nil
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> (UInt64, UInt64)? {
        guard bytes.count == length, bytes[length - 1] == UInt8(ascii: ">") else { return nil }
        for (i, b) in prefix.enumerated() where bytes[i] != b { return nil }
        var high: UInt64 = 0, low: UInt64 = 0, digits = 0
        for i in 0..<36 {
            let b = bytes[prefix.count + i]
            if isDash(i) {
                guard b == UInt8(ascii: "-") else { return nil }
                continue
            }
            let v: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = b - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = b - UInt8(ascii: "a") + 10
            default: return nil  // uppercase and other forms stay text, so they read back unchanged
            }
            if digits < 16 { high = high << 4 | UInt64(v) } else { low = low << 4 | UInt64(v) }
            digits += 1
        }
        return (high, low)
    }

    private static func format(_ high: UInt64, _ low: UInt64) -> String {
        String(unsafeUninitializedCapacity: length) { write(high, low, into: $0) }
    }

    @discardableResult
    private static func write(_ high: UInt64, _ low: UInt64, into out: UnsafeMutableBufferPointer<UInt8>) -> Int {
        let hex: StaticString = "0123456789abcdef"
        return hex.withUTF8Buffer { hex in
            for (i, b) in prefix.enumerated() { out[i] = b }
            var at = prefix.count
            var digit = 0
            for i in 0..<36 {
                if isDash(i) {
                    out[at] = UInt8(ascii: "-")
                } else {
                    let word = digit < 16 ? high : low
                    let shift = UInt64(60 - 4 * (digit % 16))
                    out[at] = hex[Int((word >> shift) & 0xF)]
                    digit += 1
                }
                at += 1
            }
            out[at] = UInt8(ascii: ">")
            return length
        }
    }
}

/// The fields few bindings set (RFC 3327 Path, a TLS identity, the node of a shared store,
/// a `reg-id` past 32 bits): one shared, immutable box, absent for most bindings.
///
/// Sendable: a final class whose stored properties are all `let` and Sendable.
final class BindingExtras: Sendable, Hashable {
    let path: [String]
    let tlsIdentity: String?
    let node: String?
    let remoteFlowID: UInt64?
    /// A `reg-id` that does not fit the binding's 32-bit field (RFC 5626 allows 1 to 2^31-1;
    /// a client may send more, and it is kept as sent).
    let wideRegID: Int?

    private init(path: [String], tlsIdentity: String?, node: String?, remoteFlowID: UInt64?, wideRegID: Int?) {
        self.path = path
        self.tlsIdentity = tlsIdentity
        self.node = node
        self.remoteFlowID = remoteFlowID
        self.wideRegID = wideRegID
    }

    /// A box with these fields, or nil when none is set (so that equal bindings have equal storage).
    static func make(path: [String], tlsIdentity: String?, node: String?, remoteFlowID: UInt64?,
                     wideRegID: Int?) -> BindingExtras? {
        if path.isEmpty, tlsIdentity == nil, node == nil, remoteFlowID == nil, wideRegID == nil { return nil }
        return BindingExtras(path: path, tlsIdentity: tlsIdentity, node: node, remoteFlowID: remoteFlowID,
                             wideRegID: wideRegID)
    }

    static func == (a: BindingExtras, b: BindingExtras) -> Bool {
        a === b || (a.path == b.path && a.tlsIdentity == b.tlsIdentity && a.node == b.node
                    && a.remoteFlowID == b.remoteFlowID && a.wideRegID == b.wideRegID)
    }

    func hash(into h: inout Hasher) {
        h.combine(path)
        h.combine(tlsIdentity)
        h.combine(node)
        h.combine(remoteFlowID)
        h.combine(wideRegID)
    }
}
