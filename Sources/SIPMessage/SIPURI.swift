/// A SIP, SIPS or other absolute URI (RFC 3261 19.1, 25.1).
///
/// `sip:` and `sips:` URIs are parsed into their parts. Any other scheme
/// (`tel:`, `mailto:`, `urn:` ...) is kept opaque: ``scheme`` plus ``opaque``.
/// The user part and password are stored unescaped; parameters and URI headers
/// are stored as written (escaped) and unescaped when compared.
public struct SIPURI: Sendable, Hashable, CustomStringConvertible, LosslessStringConvertible {
    /// The scheme, lowercased (`sip`, `sips`, `tel`, ...).
    public var scheme: String
    /// The user part, unescaped.
    public var user: String?
    /// The password, unescaped.
    public var password: String?
    /// The host as written: a name, an IPv4 address, or an IPv6 reference with brackets.
    public var host: String
    /// The port, when written.
    public var port: Int?
    /// URI parameters (`transport`, `maddr`, `lr`, `user`, ...).
    public var parameters: SIPParameters
    /// URI headers (`?name=value&...`), as written.
    public var headers: [SIPParameters.Parameter]
    /// For a scheme other than sip/sips: everything after `scheme:`.
    public var opaque: String?

    /// Builds a SIP or SIPS URI.
    public init(scheme: String = "sip", user: String? = nil, password: String? = nil, host: String, port: Int? = nil,
                parameters: SIPParameters = SIPParameters(), headers: [SIPParameters.Parameter] = []) {
        self.scheme = asciiLowercased(scheme)
        self.user = user
        self.password = password
        self.host = host
        self.port = port
        self.parameters = parameters
        self.headers = headers
        self.opaque = nil
    }

    /// Builds an opaque URI of another scheme.
    public init(scheme: String, opaque: String) {
        self.scheme = asciiLowercased(scheme)
        self.opaque = opaque
        self.user = nil
        self.password = nil
        self.host = ""
        self.port = nil
        self.parameters = SIPParameters()
        self.headers = []
    }

    /// Parses a URI; nil when it is not a valid absolute URI.
    public init?(_ text: String) {
        guard let uri = SIPURI.parse(Substring(text)) else { return nil }
        self = uri
    }

    /// Whether the scheme is `sip` or `sips`.
    public var isSIP: Bool { scheme == "sip" || scheme == "sips" }
    /// Whether the scheme is `sips`.
    public var isSIPS: Bool { scheme == "sips" }

    /// The `transport` parameter, lowercased.
    public var transport: String? { parameters.value("transport").map { asciiLowercased($0) } }

    /// The host without IPv6 brackets, lowercased.
    public var hostName: String {
        var h = host
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        return asciiLowercased(h)
    }

    /// Whether the host is an IPv6 reference.
    public var isIPv6: Bool { host.hasPrefix("[") }

    // MARK: Parsing

    /// Parses a URI from text; nil when it is not valid.
    public static func parse(_ text: Substring) -> SIPURI? {
        let u = text.utf8
        guard let colon = u.firstIndexOfByte(ASCII.colon), colon > u.startIndex else { return nil }
        let schemeBytes = u[u.startIndex..<colon]
        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
        guard let first = schemeBytes.first, ASCII.isAlpha(first),
              schemeBytes.allSatisfy({ ASCII.isAlphaNumeric($0) || $0 == 43 || $0 == 45 || $0 == 46 }) else { return nil }
        let scheme = asciiLowercased(Substring(schemeBytes))
        let rest = Substring(u[u.index(after: colon)...])
        if scheme == "sip" || scheme == "sips" {
            return parseSIP(scheme: scheme, rest)
        }
        guard !rest.isEmpty, rest.utf8.allSatisfy({ $0 > 32 && $0 != ASCII.lessThan && $0 != ASCII.greaterThan && $0 != ASCII.quote && $0 < 127 }) else {
            return nil
        }
        return SIPURI(scheme: scheme, opaque: String(rest))
    }

    private static func parseSIP(scheme: String, _ rest: Substring) -> SIPURI? {
        let u = rest.utf8
        guard !u.isEmpty else { return nil }
        for b in u where b <= 32 || b >= 127 || b == ASCII.lessThan || b == ASCII.greaterThan || b == ASCII.quote { return nil }
        var uri = SIPURI(scheme: scheme, host: "")
        var hostStart = u.startIndex
        if let at = u.firstIndexOfByte(ASCII.at) {
            let userinfo = u[u.startIndex..<at]
            var userBytes = userinfo
            if let pc = userinfo.firstIndexOfByte(ASCII.colon) {
                userBytes = userinfo[userinfo.startIndex..<pc]
                let pw = userinfo[userinfo.index(after: pc)...]
                guard pw.allSatisfy({ ASCII.isPasswordChar($0) || $0 == ASCII.percent }),
                      let password = Escaping.unescape(Substring(pw)) else { return nil }
                uri.password = password
            }
            guard !userBytes.isEmpty, userBytes.allSatisfy({ ASCII.isUserChar($0) || $0 == ASCII.percent }),
                  let user = Escaping.unescape(Substring(userBytes)) else { return nil }
            uri.user = user
            hostStart = u.index(after: at)
        }
        // host
        var i = hostStart
        if i < u.endIndex, u[i] == ASCII.leftBracket {
            guard let close = u[i...].firstIndexOfByte(ASCII.rightBracket) else { return nil }
            let inner = u[u.index(after: i)..<close]
            guard !inner.isEmpty, inner.allSatisfy({ ASCII.hexValue($0) != nil || $0 == ASCII.colon || $0 == 46 }) else { return nil }
            i = u.index(after: close)
        } else {
            while i < u.endIndex, ASCII.isHostChar(u[i]) { i = u.index(after: i) }
        }
        guard i > hostStart else { return nil }
        uri.host = String(Substring(u[hostStart..<i]))
        if !uri.host.hasPrefix("["), uri.host.utf8.first == 46 || uri.host.utf8.first == 45 { return nil }
        // port
        if i < u.endIndex, u[i] == ASCII.colon {
            i = u.index(after: i)
            let ps = i
            var port = 0
            while i < u.endIndex, ASCII.isDigit(u[i]) {
                port = port * 10 + Int(u[i] - 48)
                guard port <= 65_535 else { return nil }
                i = u.index(after: i)
            }
            guard i > ps else { return nil }
            uri.port = port
        }
        // parameters
        var paramsEnd = u.endIndex
        if let q = u[i...].firstIndexOfByte(ASCII.question) { paramsEnd = q }
        if i < paramsEnd {
            guard u[i] == ASCII.semicolon else { return nil }
            var params: [SIPParameters.Parameter] = []
            for piece in u[u.index(after: i)..<paramsEnd].split(separator: ASCII.semicolon, omittingEmptySubsequences: false) {
                let (name, value) = splitNameValue(piece, allowed: { ASCII.isParamChar($0) || $0 == ASCII.percent })
                guard let name, !name.isEmpty else { return nil }
                if let value, value == nil { return nil }
                params.append(.init(name: name, value: value ?? nil))
            }
            uri.parameters = SIPParameters(params)
        }
        // headers
        if paramsEnd < u.endIndex {
            let hs = u.index(after: paramsEnd)
            var headers: [SIPParameters.Parameter] = []
            for piece in u[hs...].split(separator: ASCII.ampersand, omittingEmptySubsequences: false) {
                let (name, value) = splitNameValue(piece, allowed: { ASCII.isHeaderChar($0) || $0 == ASCII.percent })
                guard let name, !name.isEmpty, let value, let v = value else { return nil }
                headers.append(.init(name: name, value: v))
            }
            uri.headers = headers
        }
        return uri
    }

    /// Splits `name[=value]`; name is nil when a byte is not allowed; value is `.some(nil)` when
    /// the value has a byte that is not allowed, `nil` when absent.
    private static func splitNameValue(_ piece: Substring.UTF8View.SubSequence, allowed: (UInt8) -> Bool) -> (String?, String??) {
        if let eq = piece.firstIndexOfByte(ASCII.equals) {
            let n = piece[piece.startIndex..<eq]
            let v = piece[piece.index(after: eq)...]
            guard n.allSatisfy(allowed) else { return (nil, nil) }
            guard v.allSatisfy(allowed) else { return (String(Substring(n)), .some(nil)) }
            return (String(Substring(n)), .some(String(Substring(v))))
        }
        guard piece.allSatisfy(allowed) else { return (nil, nil) }
        return (String(Substring(piece)), nil)
    }

    // MARK: Serialization

    /// The URI as text, escaped as needed (RFC 3261 19.1.1).
    public var description: String {
        var out = ""
        write(to: &out)
        return out
    }

    func write(to out: inout String) {
        out.append(scheme)
        out.append(":")
        if let opaque {
            out.append(opaque)
            return
        }
        if let user {
            out.append(Escaping.escape(user, allowed: ASCII.isUserChar))
            if let password {
                out.append(":")
                out.append(Escaping.escape(password, allowed: ASCII.isPasswordChar))
            }
            out.append("@")
        }
        out.append(host)
        if let port {
            out.append(":")
            out.append(String(port))
        }
        parameters.write(to: &out)
        if !headers.isEmpty {
            out.append("?")
            for (n, h) in headers.enumerated() {
                if n > 0 { out.append("&") }
                out.append(h.name)
                out.append("=")
                out.append(h.value ?? "")
            }
        }
    }

    // MARK: Equivalence (RFC 3261 19.1.4)

    /// URI comparison of RFC 3261 19.1.4: scheme must match; user and password are compared
    /// case-sensitively, everything else case-insensitively, after unescaping; an absent port is not
    /// 5060; `user`, `ttl`, `method`, `maddr` and `transport` must appear in both or neither; other
    /// parameters are compared only when present in both; URI headers must all match.
    /// Other schemes are compared by their lowercased scheme and opaque text.
    public func isEquivalent(to other: SIPURI) -> Bool {
        guard scheme == other.scheme else { return false }
        guard isSIP else {
            return opaque.flatMap { Escaping.unescape($0) } == other.opaque.flatMap { Escaping.unescape($0) }
        }
        guard user == other.user, password == other.password, port == other.port,
              asciiCaseInsensitiveEquals(host, other.host) else { return false }
        let mandatory = ["user", "ttl", "method", "maddr", "transport"]
        // Linear in the number of parameters whatever it is: with more than a few, the other
        // side's parameters are looked up in a table built once instead of scanned per name.
        let small = parameters.count <= 8 && other.parameters.count <= 8
        let table = small ? [:] : other.parameters.firstValuesByLowercasedName()
        func theirs(_ name: String) -> String?? {
            small ? other.parameters[name] : table[name.lowercased()]
        }
        for name in mandatory {
            let a = parameters[name], b = theirs(name)
            switch (a, b) {
            case (nil, nil): continue
            case (.some(let x), .some(let y)):
                guard Self.paramValuesMatch(x, y) else { return false }
            default: return false
            }
        }
        var compared = Set<String>()
        for p in parameters where !mandatory.contains(where: { asciiCaseInsensitiveEquals($0, p.name) }) {
            // Only the first parameter of a name counts (as the subscript does).
            guard small || compared.insert(p.name.lowercased()).inserted else { continue }
            if let t = theirs(p.name), !Self.paramValuesMatch(p.value, t) { return false }
        }
        guard headers.count == other.headers.count else { return false }
        var theirHeaders: [String?: String?] = [:]
        theirHeaders.reserveCapacity(other.headers.count)
        for h in other.headers {
            let name = Escaping.normalizedCaseInsensitive(h.name)
            if theirHeaders[name] == nil { theirHeaders[name] = .some(Escaping.unescape(h.value ?? "")) }
        }
        for h in headers {
            guard let value = theirHeaders[Escaping.normalizedCaseInsensitive(h.name)] else { return false }
            guard value == Escaping.unescape(h.value ?? "") else { return false }
        }
        return true
    }

    /// A key that is the same for every two URIs that ``isEquivalent(to:)`` calls equivalent
    /// (RFC 3261 19.1.4), built in one pass: a dictionary keyed by it finds the candidates for a
    /// match without comparing against every stored URI. URIs with the same key may still
    /// differ in a parameter present in both, so a hit is confirmed with ``isEquivalent(to:)``.
    public var equivalenceKey: String {
        guard isSIP else { return scheme + ":" + (opaque.flatMap { Escaping.unescape($0) } ?? "") }
        var key = scheme
        key += "|"
        key += user ?? "\u{0}"
        key += "|"
        key += password ?? "\u{0}"
        key += "|"
        key += asciiLowercased(host)
        key += "|"
        key += port.map { String($0) } ?? "-"
        for name in ["user", "ttl", "method", "maddr", "transport"] {
            key += "|"
            if let value = parameters[name] {
                key += value.flatMap { Escaping.normalizedCaseInsensitive($0) } ?? "\u{0}"
            } else {
                key += "\u{1}"
            }
        }
        key += "|"
        key += String(headers.count)
        return key
    }

    private static func paramValuesMatch(_ a: String?, _ b: String?) -> Bool {
        switch (a, b) {
        case (nil, nil): return true
        case (.some(let x), .some(let y)):
            return Escaping.normalizedCaseInsensitive(x) == Escaping.normalizedCaseInsensitive(y)
        default: return false
        }
    }
}
