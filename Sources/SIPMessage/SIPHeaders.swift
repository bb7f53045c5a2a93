/// One header field: a name and its value as written (folding undone, whitespace trimmed).
public struct SIPHeaderField: Sendable, Hashable {
    /// The field name.
    public var name: SIPHeaderName
    /// The value. Parsed messages keep it as a view into the message text, so
    /// parsing does not copy each value.
    public var value: Substring

    /// A field whose value is a view into existing text.
    public init(name: SIPHeaderName, value: Substring) {
        self.name = name
        self.value = value
    }

    /// A field with a value of its own.
    public init(name: SIPHeaderName, value: String) {
        self.name = name
        self.value = Substring(value)
    }
}

/// The ordered header fields of a message. Names compare case-insensitively
/// and compact forms match long forms; repeated fields keep their order.
public struct SIPHeaders: Sendable, Hashable, RandomAccessCollection, ExpressibleByArrayLiteral {
    /// The fields in message order.
    public internal(set) var fields: [SIPHeaderField]

    /// No fields.
    public init() { fields = [] }
    /// The given fields, in order.
    public init(_ fields: [SIPHeaderField]) { self.fields = fields }
    /// Fields from a literal: `[(.callID, "a84b4c76e66710"), (.cseq, "1 REGISTER")]`.
    public init(arrayLiteral elements: (SIPHeaderName, String)...) {
        fields = elements.map { SIPHeaderField(name: $0.0, value: $0.1) }
    }

    init(reservingCapacity n: Int) {
        fields = []
        fields.reserveCapacity(n)
    }

    /// The position of the first field.
    public var startIndex: Int { fields.startIndex }
    /// The position after the last field.
    public var endIndex: Int { fields.endIndex }
    /// The field at `position`.
    public subscript(position: Int) -> SIPHeaderField { fields[position] }

    /// The first value of that name.
    public subscript(name: SIPHeaderName) -> Substring? {
        for f in fields where f.name == name { return f.value }
        return nil
    }

    /// Whether a field of that name is present.
    public func contains(_ name: SIPHeaderName) -> Bool { fields.contains { $0.name == name } }

    /// Every field value of that name, in order.
    public func values(_ name: SIPHeaderName) -> [Substring] {
        fields.compactMap { $0.name == name ? $0.value : nil }
    }

    /// Every comma-separated element of every field of that name, in order; commas
    /// inside quoted strings and angle brackets do not split (RFC 3261 7.3.1).
    public func splitValues(_ name: SIPHeaderName) -> [Substring] {
        var result: [Substring] = []
        for f in fields where f.name == name {
            result.append(contentsOf: HeaderSplitter.split(f.value, on: ASCII.comma))
        }
        return result
    }

    /// The first value of one header field value (as ``splitList(_:)`` would give it first),
    /// found without splitting the rest; nil when the field holds no value.
    public static func firstOfList(_ value: Substring) -> Substring? {
        HeaderSplitter.firstPiece(value, on: ASCII.comma)
    }

    /// Splits one header value at commas outside quoted strings and angle brackets
    /// (RFC 3261 7.3.1), trimmed; what ``splitValues(_:)`` does for each field.
    public static func splitList(_ value: Substring) -> [Substring] {
        HeaderSplitter.split(value, on: ASCII.comma)
    }

    /// Appends a field.
    public mutating func add(_ name: SIPHeaderName, _ value: String) {
        fields.append(SIPHeaderField(name: name, value: value))
    }

    /// Appends a field keeping a view of existing text.
    public mutating func add(_ name: SIPHeaderName, _ value: Substring) {
        fields.append(SIPHeaderField(name: name, value: value))
    }

    mutating func append(_ field: SIPHeaderField) { fields.append(field) }

    /// Inserts a field before all others (e.g. a new top Via).
    public mutating func prepend(_ name: SIPHeaderName, _ value: String) {
        fields.insert(SIPHeaderField(name: name, value: value), at: 0)
    }

    /// Replaces every field of that name with one field (appended where the first one was).
    public mutating func set(_ name: SIPHeaderName, _ value: String) {
        if let i = fields.firstIndex(where: { $0.name == name }) {
            fields[i].value = Substring(value)
            var j = i + 1
            while j < fields.count {
                if fields[j].name == name { fields.remove(at: j) } else { j += 1 }
            }
        } else {
            add(name, value)
        }
    }

    /// Removes every field of that name.
    public mutating func remove(_ name: SIPHeaderName) {
        fields.removeAll { $0.name == name }
    }

    /// Replaces the value of the field at `index`.
    public mutating func replaceValue(at index: Int, with value: String) {
        fields[index].value = Substring(value)
    }

    /// Removes the field at `index`.
    public mutating func remove(at index: Int) {
        fields.remove(at: index)
    }
}
