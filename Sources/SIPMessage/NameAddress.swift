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
        let t = text.trimmingSIPWhitespace()
        let u = t.utf8
        guard !u.isEmpty else { return nil }
        var displayName: String?
        var i = u.startIndex
        var uriText: Substring
        var paramsText: Substring

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
            displayName = unquote(Substring(u[i...j]))
            i = u.index(after: j)
            while i < u.endIndex, ASCII.isWhitespace(u[i]) { i = u.index(after: i) }
            guard i < u.endIndex, u[i] == ASCII.lessThan else { return nil }
        }
        if let lt = u[i...].firstIndexOfByte(ASCII.lessThan) {
            if displayName == nil {
                let name = Substring(u[i..<lt]).trimmingSIPWhitespace()
                if !name.isEmpty { displayName = String(name) }
            }
            guard let gt = u[lt...].firstIndexOfByte(ASCII.greaterThan) else { return nil }
            uriText = Substring(u[u.index(after: lt)..<gt])
            paramsText = Substring(u[u.index(after: gt)...])
        } else {
            guard displayName == nil else { return nil }
            // addr-spec: parameters after the first ';' belong to the header.
            let semi = u[i...].firstIndexOfByte(ASCII.semicolon) ?? u.endIndex
            uriText = Substring(u[i..<semi])
            paramsText = Substring(u[semi...])
            // A bare addr-spec cannot carry URI headers; '?' then belongs to nothing valid.
        }
        let uriTrimmed = uriText.trimmingSIPWhitespace()
        guard let uri = SIPURI.parse(uriTrimmed) else { return nil }
        let ptrim = paramsText.trimmingSIPWhitespace()
        var params = SIPParameters()
        if !ptrim.isEmpty {
            guard ptrim.utf8.first == ASCII.semicolon, let p = HeaderSplitter.parameters(ptrim) else { return nil }
            params = p
        }
        return (NameAddress(displayName: displayName, uri: uri, parameters: params), uriTrimmed)
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
