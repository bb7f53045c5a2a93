/// A `name-addr` or `addr-spec` with header parameters, as in From, To, Contact,
/// Route, Record-Route and Path (RFC 3261 20.10, 25.1).
///
/// In the bare `addr-spec` form (no angle brackets) everything after the first
/// `;` belongs to the header, not to the URI: `sip:alice@example.com;tag=1`
/// is the URI `sip:alice@example.com` with the header parameter `tag=1`.
public struct NameAddress: Sendable, Hashable, CustomStringConvertible {
    /// The display name, unquoted; nil when absent.
    public var displayName: String?
    /// The URI.
    public var uri: SIPURI
    /// Header parameters (`tag`, `expires`, `q`, ...), values as written.
    public var parameters: SIPParameters

    /// A name-addr from its parts.
    public init(displayName: String? = nil, uri: SIPURI, parameters: SIPParameters = SIPParameters()) {
        self.displayName = displayName
        self.uri = uri
        self.parameters = parameters
    }

    /// The `tag` parameter.
    public var tag: String? {
        get { parameters.value("tag") }
        set { if let newValue { parameters.set("tag", newValue) } else { parameters.remove("tag") } }
    }

    /// Parses one name-addr / addr-spec with parameters; nil when malformed.
    public static func parse<S: StringProtocol>(_ text: S) -> NameAddress? where S.SubSequence == Substring {
        parseKeepingURIText(Substring(text))?.0
    }

    /// Parses and also returns the URI exactly as written.
    static func parseKeepingURIText(_ text: Substring) -> (NameAddress, Substring)? {
        guard let parts = split(text) else { return nil }
        var displayName: String?
        if let name = parts.displayName {
            if name.utf8.first == ASCII.quote {
                displayName = unquote(name)
            } else {
                let trimmed = name.trimmingSIPWhitespace()
                if !trimmed.isEmpty { displayName = String(trimmed) }
            }
        }
        let uriTrimmed = parts.uri.trimmingSIPWhitespace()
        guard let uri = SIPURI.parse(uriTrimmed), let params = headerParameters(parts.parameters) else { return nil }
        return (NameAddress(displayName: displayName, uri: uri, parameters: params), uriTrimmed)
    }

    /// The header parameters of a name-addr / addr-spec (`tag`, `expires`, ...) without parsing
    /// its display name or URI: for a proxy that inspects a To or From tag and nothing else
    /// (RFC 3261 16.3 step 1 asks for reasonable syntax only of what the proxy inspects).
    /// Nil when the value cannot be split or its parameters are malformed.
    public static func parameters(of text: Substring) -> SIPParameters? {
        guard let parts = split(text) else { return nil }
        return headerParameters(parts.parameters)
    }

    private static func headerParameters(_ text: Substring) -> SIPParameters? {
        let trimmed = text.trimmingSIPWhitespace()
        if trimmed.isEmpty { return SIPParameters() }
        guard trimmed.utf8.first == ASCII.semicolon else { return nil }
        return HeaderSplitter.parameters(trimmed)
    }

    /// Splits a value into its display name as written (quoted or not; nil when there is
    /// none), its URI text and its header-parameter text, or nil when it has no URI part,
    /// an unclosed quote or angle bracket, or a quoted display name without `<`.
    private static func split(_ text: Substring) -> (displayName: Substring?, uri: Substring, parameters: Substring)? {
        let t = text.trimmingSIPWhitespace()
        let u = t.utf8
        guard !u.isEmpty else { return nil }
        var displayName: Substring?
        var quoted = false
        var i = u.startIndex

        // Display name: a quoted string, or tokens up to '<'.
        if u[i] == ASCII.quote {
            var j = u.index(after: i)
            var escaped = false
            var closed = false
            while j < u.endIndex {
                let b = u[j]
                if escaped { escaped = false } else if b == ASCII.backslash { escaped = true } else if b == ASCII.quote { closed = true; break }
                j = u.index(after: j)
            }
            guard closed else { return nil }
            displayName = Substring(u[i...j])
            quoted = true
            i = u.index(after: j)
            while i < u.endIndex, ASCII.isWhitespace(u[i]) { i = u.index(after: i) }
            guard i < u.endIndex, u[i] == ASCII.lessThan else { return nil }
        }
        if let lt = u[i...].firstIndexOfByte(ASCII.lessThan) {
            if !quoted { displayName = Substring(u[i..<lt]) }
            guard let gt = u[lt...].firstIndexOfByte(ASCII.greaterThan) else { return nil }
            return (displayName, Substring(u[u.index(after: lt)..<gt]), Substring(u[u.index(after: gt)...]))
        }
        guard !quoted else { return nil }
        // addr-spec: parameters after the first ';' belong to the header.
        // A bare addr-spec cannot carry URI headers; '?' then belongs to nothing valid.
        let semi = u[i...].firstIndexOfByte(ASCII.semicolon) ?? u.endIndex
        return (nil, Substring(u[i..<semi]), Substring(u[semi...]))
    }

    /// Always the `name-addr` form with angle brackets, which is safe whatever the URI holds.
    public var description: String {
        var out = ""
        if let displayName {
            if !displayName.isEmpty, displayName.utf8.allSatisfy({ ASCII.isTokenChar($0) }) {
                out.append(displayName)
            } else {
                out.append(quote(displayName))
            }
            out.append(" ")
        }
        out.append("<")
        uri.write(to: &out)
        out.append(">")
        parameters.write(to: &out)
        return out
    }
}
