/// One Contact value (RFC 3261 20.10, RFC 5626 `+sip.instance` / `reg-id`).
public struct SIPContact: Sendable, Hashable, CustomStringConvertible {
    /// The contact as a name-addr: display name, URI and header parameters (`expires`, `q`, ...).
    public var address: NameAddress
    /// The URI exactly as the message wrote it, when parsed from a message.
    public var uriText: Substring?

    /// A contact from a name-addr.
    public init(address: NameAddress) { self.address = address }
    init(address: NameAddress, uriText: Substring) {
        self.address = address
        self.uriText = uriText
    }
    /// A contact for `uri` with header parameters (`;expires=3600;q=0.5`).
    public init(uri: SIPURI, parameters: SIPParameters = SIPParameters()) {
        self.address = NameAddress(uri: uri, parameters: parameters)
    }

    /// The contact URI; setting it forgets ``uriText``.
    public var uri: SIPURI {
        get { address.uri }
        set {
            address.uri = newValue
            uriText = nil
        }
    }

    /// The `expires` parameter in seconds. Nil when absent; a value that is not a
    /// number of seconds makes ``hasInvalidExpires`` true.
    public var expires: Int? {
        guard let v = address.parameters.value("expires") else { return nil }
        return SIPHeaders.parseDeltaSeconds(Substring(v))
    }

    /// Whether an `expires` parameter is present but not a valid number.
    public var hasInvalidExpires: Bool {
        guard let v = address.parameters[ "expires"] else { return false }
        guard let v else { return true }
        return SIPHeaders.parseDeltaSeconds(Substring(v)) == nil
    }

    /// The `q` value in thousandths (0...1000), nil when absent or malformed.
    public var qValue: Int? {
        address.parameters.value("q").flatMap(SIPContact.parseQ)
    }

    /// Whether a `q` parameter is present but not a valid qvalue.
    public var hasInvalidQ: Bool {
        guard let v = address.parameters["q"] else { return false }
        guard let v else { return true }
        return SIPContact.parseQ(v) == nil
    }

    /// The `+sip.instance` value without quotes.
    public var instance: String? { address.parameters.unquotedValue("+sip.instance") }
    /// The `reg-id` value.
    public var regID: Int? { address.parameters.value("reg-id").flatMap { Int($0) } }

    /// Parses a qvalue (`0`, `0.5`, `1.000`) into thousandths.
    public static func parseQ(_ text: String) -> Int? {
        let u = Array(text.utf8)
        guard let first = u.first, first == 48 || first == 49 else { return nil }
        var value = Int(first - 48) * 1000
        if u.count == 1 { return value }
        guard u[1] == 46, u.count <= 5 else { return nil }
        var scale = 100
        for b in u[2...] {
            guard ASCII.isDigit(b) else { return nil }
            value += Int(b - 48) * scale
            scale /= 10
        }
        return value <= 1000 ? value : nil
    }

    /// Formats thousandths as a qvalue (`1`, `0.5`, `0.25`).
    public static func formatQ(_ q: Int) -> String {
        if q >= 1000 { return "1" }
        if q <= 0 { return "0" }
        var frac = String(q)
        while frac.count < 3 { frac = "0" + frac }
        while frac.hasSuffix("0") { frac.removeLast() }
        return "0." + frac
    }

    /// The contact as a Contact header value.
    public var description: String { address.description }
}

/// The Contact header: either `*` or a list of contacts.
public enum SIPContactHeader: Sendable, Hashable {
    /// `Contact: *`: with `Expires: 0`, removes every binding (RFC 3261 10.2.2).
    case wildcard
    /// One or more contacts, in the order written.
    case contacts([SIPContact])
}

/// A challenge (WWW-/Proxy-Authenticate) or credentials (Authorization/Proxy-Authorization):
/// a scheme and comma-separated auth-params (RFC 3261 25.1, RFC 7616).
public struct SIPAuthField: Sendable, Hashable, CustomStringConvertible {
    /// `Digest`.
    public var scheme: String
    /// Parameters in order; values unquoted.
    public var parameters: [(name: String, value: String)]

    /// A field from its scheme and its parameters (values unquoted).
    public init(scheme: String, parameters: [(name: String, value: String)]) {
        self.scheme = scheme
        self.parameters = parameters
    }

    /// The value of a parameter (case-insensitive name), unquoted.
    public subscript(name: String) -> String? {
        parameters.first { asciiCaseInsensitiveEquals($0.name, name) }?.value
    }

    /// Parses `Digest realm="example.com", nonce="...", qop=auth`; nil when malformed
    /// (a parameter without `=`, an unterminated quoted string, a scheme that is no token).
    public static func parse(_ text: Substring) -> SIPAuthField? {
        let t = text.trimmingSIPWhitespace()
        let u = t.utf8
        guard let sp = u.firstIndex(where: { ASCII.isWhitespace($0) }) else {
            guard !u.isEmpty, u.allSatisfy(ASCII.isTokenChar) else { return nil }
            return SIPAuthField(scheme: String(t), parameters: [])
        }
        let scheme = Substring(u[u.startIndex..<sp])
        guard !scheme.isEmpty, scheme.utf8.allSatisfy(ASCII.isTokenChar) else { return nil }
        var params: [(name: String, value: String)] = []
        for piece in HeaderSplitter.split(Substring(u[sp...]), on: ASCII.comma) {
            guard let eq = piece.utf8.firstIndexOfByte(ASCII.equals) else { return nil }
            let name = Substring(piece.utf8[piece.utf8.startIndex..<eq]).trimmingSIPWhitespace()
            let value = Substring(piece.utf8[piece.utf8.index(after: eq)...]).trimmingSIPWhitespace()
            guard !name.isEmpty, name.utf8.allSatisfy(ASCII.isTokenChar) else { return nil }
            if value.utf8.first == ASCII.quote {
                guard value.utf8.count >= 2, value.utf8.last == ASCII.quote else { return nil }
            }
            params.append((String(name), unquote(value)))
        }
        return SIPAuthField(scheme: String(scheme), parameters: params)
    }

    /// Parameters that are sent as tokens, never quoted (RFC 7616 3.3 / RFC 3261 25.1).
    static let tokenParameters: Set<String> = ["algorithm", "qop", "nc", "stale"]

    /// The header value: the scheme, then the parameters, quoted except the token ones
    /// (`algorithm`, `qop`, `nc`, `stale`).
    public var description: String {
        var out = scheme
        for (i, p) in parameters.enumerated() {
            out += i == 0 ? " " : ", "
            out += p.name + "="
            out += SIPAuthField.tokenParameters.contains(asciiLowercased(p.name)) ? p.value : quote(p.value)
        }
        return out
    }

    /// Equal when the scheme and the parameters, in order, are equal.
    public static func == (lhs: SIPAuthField, rhs: SIPAuthField) -> Bool {
        lhs.scheme == rhs.scheme && lhs.parameters.elementsEqual(rhs.parameters, by: { $0.name == $1.name && $0.value == $1.value })
    }

    /// Hashes the scheme and the parameters in order, as `==` compares them.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(scheme)
        for p in parameters {
            hasher.combine(p.name)
            hasher.combine(p.value)
        }
    }
}

/// A Warning value (RFC 3261 20.43): `code agent "text"`.
public struct SIPWarning: Sendable, Hashable, CustomStringConvertible {
    /// The three-digit warn-code (`380` SIPS Not Allowed, RFC 5630).
    public var code: Int
    /// The warn-agent: the host (and port) or pseudonym of the element that added it.
    public var agent: String
    /// The warn-text, unquoted.
    public var text: String

    /// A warning from its three parts.
    public init(code: Int, agent: String, text: String) {
        self.code = code
        self.agent = agent
        self.text = text
    }

    /// Parses `380 example.com "SIPS Not Allowed"`; nil unless it has exactly those three parts.
    public static func parse(_ value: Substring) -> SIPWarning? {
        let t = value.trimmingSIPWhitespace()
        let parts = t.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count == 3, parts[0].utf8.count == 3, let code = Int(parts[0]),
              parts[2].utf8.first == ASCII.quote, parts[2].utf8.last == ASCII.quote, parts[2].utf8.count >= 2 else { return nil }
        return SIPWarning(code: code, agent: String(parts[1]), text: unquote(parts[2]))
    }

    /// The header value, the text quoted.
    public var description: String { "\(code) \(agent) \(quote(text))" }
}

/// Retry-After (RFC 3261 20.33): delta-seconds, an optional comment and parameters.
public struct SIPRetryAfter: Sendable, Hashable {
    /// How long to wait before retrying, in seconds.
    public var seconds: Int
    /// The comment in parentheses, if any, without them.
    public var comment: String?
    /// Parameters after the value (`;duration=...`).
    public var parameters: SIPParameters

    /// A Retry-After value.
    public init(seconds: Int, comment: String? = nil, parameters: SIPParameters = SIPParameters()) {
        self.seconds = seconds
        self.comment = comment
        self.parameters = parameters
    }

    /// Parses `120 (in a meeting);duration=3600`; nil when malformed.
    public static func parse(_ value: Substring) -> SIPRetryAfter? {
        let t = value.trimmingSIPWhitespace()
        let u = t.utf8
        var i = u.startIndex
        while i < u.endIndex, ASCII.isDigit(u[i]) { i = u.index(after: i) }
        guard let seconds = SIPHeaders.parseDeltaSeconds(Substring(u[u.startIndex..<i])) else { return nil }
        var rest = Substring(u[i...]).trimmingSIPWhitespace()
        var comment: String?
        if rest.utf8.first == 40 {  // '('
            guard let close = rest.utf8.lastIndex(of: 41) else { return nil }
            comment = String(Substring(rest.utf8[rest.utf8.index(after: rest.utf8.startIndex)..<close]))
            rest = Substring(rest.utf8[rest.utf8.index(after: close)...]).trimmingSIPWhitespace()
        }
        var params = SIPParameters()
        if !rest.isEmpty {
            guard rest.utf8.first == ASCII.semicolon, let p = HeaderSplitter.parameters(rest) else { return nil }
            params = p
        }
        return SIPRetryAfter(seconds: seconds, comment: comment, parameters: params)
    }
}
