/// An ordered list of `;name[=value]` parameters with case-insensitive names.
///
/// Used for URI parameters (values kept as written, escaped) and for header
/// parameters (values kept as written, quoted strings with their quotes).
public struct SIPParameters: Sendable, Hashable, Sequence, ExpressibleByDictionaryLiteral {
    /// One `;name[=value]` parameter.
    public struct Parameter: Sendable, Hashable {
        /// The name as written; compared case-insensitively.
        public var name: String
        /// The value as written; nil for a flag such as `lr` or `rport`.
        public var value: String?

        /// A parameter; no value for a flag.
        public init(name: String, value: String? = nil) {
            self.name = name
            self.value = value
        }
    }

    /// The parameters in the order written.
    public private(set) var elements: [Parameter]

    /// No parameters.
    public init() { elements = [] }
    /// The given parameters, in order.
    public init(_ elements: [Parameter]) { self.elements = elements }
    /// Parameters from a literal: `["transport": "tls", "lr": nil]`, in the literal's order.
    public init(dictionaryLiteral pairs: (String, String?)...) {
        elements = pairs.map { Parameter(name: $0.0, value: $0.1) }
    }

    /// Whether there are no parameters.
    public var isEmpty: Bool { elements.isEmpty }
    /// The number of parameters.
    public var count: Int { elements.count }
    /// Iterates the parameters in order.
    public func makeIterator() -> IndexingIterator<[Parameter]> { elements.makeIterator() }

    /// Whether a parameter of that name is present (with or without value).
    public func contains(_ name: String) -> Bool { index(of: name) != nil }

    /// The value of the named parameter: `.some(nil)` for a flag, nil when absent.
    public subscript(name: String) -> String?? {
        guard let i = index(of: name) else { return nil }
        return .some(elements[i].value)
    }

    /// The value of the named parameter, or nil when absent or a flag.
    public func value(_ name: String) -> String? {
        guard let i = index(of: name) else { return nil }
        return elements[i].value
    }

    /// The value with surrounding quotes removed and quoted-pairs resolved.
    public func unquotedValue(_ name: String) -> String? {
        value(name).map { unquote($0) }
    }

    /// Sets (replacing the first of that name) or appends a parameter.
    public mutating func set(_ name: String, _ value: String?) {
        if let i = index(of: name) {
            elements[i].value = value
        } else {
            elements.append(Parameter(name: name, value: value))
        }
    }

    /// Removes every parameter of that name.
    public mutating func remove(_ name: String) {
        guard index(of: name) != nil else { return }
        elements.removeAll { asciiCaseInsensitiveEquals($0.name, name) }
    }

    /// The first value of each name, keyed by the lowercased name: for lookups in long lists.
    func firstValuesByLowercasedName() -> [String: String?] {
        var table: [String: String?] = [:]
        table.reserveCapacity(elements.count)
        for p in elements {
            let key = p.name.lowercased()
            if table[key] == nil { table[key] = .some(p.value) }
        }
        return table
    }

    func index(of name: String) -> Int? {
        elements.firstIndex { asciiCaseInsensitiveEquals($0.name, name) }
    }

    /// `;a=b;c` form.
    public var serialized: String {
        var out = ""
        write(to: &out)
        return out
    }

    func write(to out: inout String) {
        for p in elements {
            out.append(";")
            out.append(p.name)
            if let v = p.value {
                out.append("=")
                out.append(v)
            }
        }
    }
}

/// Removes the quotes of a quoted-string and resolves `\x` pairs; other text is returned unchanged.
public func unquote(_ s: String) -> String { unquote(Substring(s)) }

/// Removes the quotes of a quoted-string and resolves `\x` pairs; other text is returned unchanged.
public func unquote(_ s: Substring) -> String {
    s.utf8.withBytes { u in
        let n = u.count
        guard n >= 2, u[0] == ASCII.quote, u[n - 1] == ASCII.quote else { return String(s) }
        let inner = UnsafeBufferPointer(rebasing: u[1..<(n - 1)])
        if inner.firstIndex(of: ASCII.backslash) == nil { return u.string(1, n - 1) }
        var out: [UInt8] = []
        out.reserveCapacity(inner.count)
        var escaped = false
        for b in inner {
            if escaped {
                out.append(b)
                escaped = false
            } else if b == ASCII.backslash {
                escaped = true
            } else {
                out.append(b)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Quotes a string as an RFC 3261 quoted-string.
public func quote(_ s: String) -> String {
    if !s.utf8.contains(where: { $0 == ASCII.quote || $0 == ASCII.backslash }) {
        var out = ""
        out.reserveCapacity(s.utf8.count + 2)
        out += "\""
        out += s
        out += "\""
        return out
    }
    var out = "\""
    for ch in s.unicodeScalars {
        if ch == "\"" || ch == "\\" { out.append("\\") }
        out.unicodeScalars.append(ch)
    }
    out.append("\"")
    return out
}

/// Tracks quoted strings (with `\x` pairs) while header text is scanned byte by byte.
struct QuoteTracker {
    private(set) var inQuote = false
    private var escaped = false

    /// Consumes one byte; true when the byte is outside any quoted string and is not a quote itself.
    @inline(__always)
    mutating func isUnquoted(_ b: UInt8) -> Bool {
        if inQuote {
            if escaped { escaped = false } else if b == ASCII.backslash { escaped = true } else if b == ASCII.quote { inQuote = false }
            return false
        }
        if b == ASCII.quote {
            inQuote = true
            return false
        }
        return true
    }
}

/// Splitting of header text outside quoted strings and angle brackets.
enum HeaderSplitter {
    /// Splits on `separator` occurring outside quotes and `<...>`; pieces are trimmed; empty pieces dropped.
    static func split(_ text: Substring, on separator: UInt8) -> [Substring] {
        let u = text.utf8
        // Over the bytes by offsets, then one index computation per piece instead of index calls
        // into the standard library per byte.
        return u.withBytes { bytes in
            // No separator anywhere (one Contact, one Via): one piece, without tracking quotes.
            guard bytes.contains(separator) else {
                return trimmedPiece(u, bytes, 0, bytes.count).map { [$0] } ?? []
            }
            var pieces: [Substring] = []
            forEachPiece(bytes, on: separator) { from, to in
                if let piece = trimmedPiece(u, bytes, from, to) { pieces.append(piece) }
                return true
            }
            return pieces
        }
    }

    /// The first piece ``split(_:on:)`` would return, without scanning past it (the top Via of
    /// a field that holds the whole Via stack).
    static func firstPiece(_ text: Substring, on separator: UInt8) -> Substring? {
        let u = text.utf8
        return u.withBytes { bytes in
            var first: Substring?
            forEachPiece(bytes, on: separator) { from, to in
                first = trimmedPiece(u, bytes, from, to)
                return first == nil
            }
            return first
        }
    }

    /// Calls `body` with the offsets of each piece between `separator`s outside quoted strings
    /// and `<...>`, the last piece included, until it returns false.
    private static func forEachPiece(_ bytes: UnsafeBufferPointer<UInt8>, on separator: UInt8,
                                     _ body: (_ from: Int, _ to: Int) -> Bool) {
        var quotes = QuoteTracker()
        var angle = 0
        var start = 0
        for i in 0..<bytes.count {
            let b = bytes[i]
            if !quotes.isUnquoted(b) {
                // inside a quoted string, or a quote
            } else if b == ASCII.lessThan {
                angle += 1
            } else if b == ASCII.greaterThan {
                if angle > 0 { angle -= 1 }
            } else if b == separator && angle == 0 {
                guard body(start, i) else { return }
                start = i + 1
            }
        }
        _ = body(start, bytes.count)
    }

    /// `bytes[from..<to]` without surrounding spaces, tabs, CR and LF (as `trimmingSIPWhitespace`),
    /// as a substring of `u`; nil when empty.
    @inline(__always)
    static func trimmedPiece(_ u: Substring.UTF8View, _ bytes: UnsafeBufferPointer<UInt8>, _ from: Int, _ to: Int) -> Substring? {
        bytes.trimmedRange(from, to).map { u.substring($0) }
    }

    /// Whether a name-addr value has a header parameter of that name (outside quotes and
    /// angle brackets; in the addr-spec form every `;` starts a header parameter).
    static func hasHeaderParameter(_ value: Substring, named name: StaticString) -> Bool {
        value.utf8.withBytes { u in
            name.withUTF8Buffer { nb in
                let end = u.count
                var quotes = QuoteTracker()
                var angle = false
                var i = 0
                while i < end {
                    let b = u[i]
                    if !quotes.isUnquoted(b) {
                        // inside a quoted string, or a quote
                    } else if b == ASCII.lessThan {
                        angle = true
                    } else if b == ASCII.greaterThan {
                        angle = false
                    } else if b == ASCII.semicolon, !angle {
                        var j = i + 1
                        while j < end, ASCII.isWhitespace(u[j]) { j += 1 }
                        var k = 0
                        while k < nb.count, j < end, ASCII.lower(u[j]) == nb[k] {
                            j += 1
                            k += 1
                        }
                        if k == nb.count {
                            while j < end, ASCII.isWhitespace(u[j]) { j += 1 }
                            if j == end || u[j] == ASCII.equals || u[j] == ASCII.semicolon { return true }
                        }
                    }
                    i += 1
                }
                return false
            }
        }
    }

    /// Parses `;name=value;flag` text (leading `;` optional) into parameters.
    /// Quoted values keep their quotes. Returns nil for an empty parameter name or unbalanced quote,
    /// and with `allowEmpty` false also for an empty parameter (`;;`), which the grammar
    /// (`*( SEMI param )`) does not allow: lenient for Contact, strict for Via (RFC 4475 3.1.2.1).
    static func parameters(_ text: Substring, allowEmpty: Bool = true) -> SIPParameters? {
        text.utf8.withBytes { bytes -> SIPParameters? in
            var result: [SIPParameters.Parameter] = []
            // One allocation for the list instead of one per doubling (a Via has 2-4 parameters).
            var separators = 1
            for i in 0..<bytes.count where bytes[i] == ASCII.semicolon { separators += 1 }
            result.reserveCapacity(separators)
            var quotes = QuoteTracker()
            var start = 0
            var equals: Int?
            func finish(_ end: Int) -> Bool {
                guard let piece = bytes.trimmedRange(start, end) else {
                    return allowEmpty || end == 0 || end == bytes.count
                }
                if let eq = equals {
                    guard let name = bytes.trimmedRange(start, eq),
                          bytes.all(name.lowerBound, name.upperBound, ASCII.isTokenChar) else { return false }
                    let value = bytes.trimmedRange(eq + 1, end).map { bytes.string($0.lowerBound, $0.upperBound) } ?? ""
                    result.append(.init(name: bytes.string(name.lowerBound, name.upperBound), value: value))
                } else {
                    guard bytes.all(piece.lowerBound, piece.upperBound, ASCII.isTokenChar) else { return false }
                    result.append(.init(name: bytes.string(piece.lowerBound, piece.upperBound), value: nil))
                }
                return true
            }
            for i in 0..<bytes.count {
                let b = bytes[i]
                if !quotes.isUnquoted(b) {
                    // inside a quoted string, or a quote
                } else if b == ASCII.equals, equals == nil {
                    equals = i
                } else if b == ASCII.semicolon {
                    guard finish(i) else { return nil }
                    start = i + 1
                    equals = nil
                }
            }
            if quotes.inQuote { return nil }
            guard finish(bytes.count) else { return nil }
            return SIPParameters(result)
        }
    }
}
