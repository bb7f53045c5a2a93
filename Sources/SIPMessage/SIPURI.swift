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
        let u = host.utf8
        if u.count >= 2, u.first == ASCII.leftBracket, u.last == ASCII.rightBracket {
            return asciiLowercased(host.dropFirst().dropLast())
        }
        return asciiLowercased(host)
    }

    /// Whether the host is an IPv6 reference.
    public var isIPv6: Bool { host.hasPrefix("[") }

    // MARK: Parsing

    /// Parses a URI from text; nil when it is not valid.
    ///
    /// The scan runs over the text's contiguous UTF-8 bytes with integer offsets: walking a
    /// `Substring.UTF8View` by its indices costs a call into the standard library per byte,
    /// and a REGISTER parses three or four URIs (Request-URI, To, From, Contact).
    public static func parse(_ text: Substring) -> SIPURI? {
        text.utf8.withBytes { parse(bytes: $0) }
    }

    private static func parse(bytes u: UnsafeBufferPointer<UInt8>) -> SIPURI? {
        guard let colon = u.firstIndex(of: ASCII.colon), colon > 0 else { return nil }
        // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
        guard ASCII.isAlpha(u[0]) else { return nil }
        for k in 1..<colon {
            let b = u[k]
            guard ASCII.isAlphaNumeric(b) || b == 43 || b == 45 || b == 46 else { return nil }
        }
        let scheme: String
        if colon == 3, u[0] | 0x20 == 0x73, u[1] | 0x20 == 0x69, u[2] | 0x20 == 0x70 {
            scheme = "sip"
        } else if colon == 4, u[0] | 0x20 == 0x73, u[1] | 0x20 == 0x69, u[2] | 0x20 == 0x70, u[3] | 0x20 == 0x73 {
            scheme = "sips"
        } else {
            scheme = asciiLowercased(u.string(0, colon))
        }
        let rest = UnsafeBufferPointer(rebasing: u[(colon + 1)...])
        if scheme == "sip" || scheme == "sips" {
            return parseSIP(scheme: scheme, rest)
        }
        guard !rest.isEmpty else { return nil }
        for b in rest where !(b > 32 && b != ASCII.lessThan && b != ASCII.greaterThan && b != ASCII.quote && b < 127) {
            return nil
        }
        return SIPURI(scheme: scheme, opaque: rest.string(0, rest.count))
    }

    /// Whether every byte of `lo..<hi` passes `allowed` or is a `%` (of an escape).
    private static func all(_ u: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, _ allowed: (UInt8) -> Bool) -> Bool {
        u.all(lo, hi) { allowed($0) || $0 == ASCII.percent }
    }

    /// RFC 3261 19.1.1 / 25.1: `sip:`/`sips:` `[userinfo "@"] hostport uri-parameters [headers]`.
    private static func parseSIP(scheme: String, _ u: UnsafeBufferPointer<UInt8>) -> SIPURI? {
        let n = u.count
        guard n > 0 else { return nil }
        for b in u where b <= 32 || b >= 127 || b == ASCII.lessThan || b == ASCII.greaterThan || b == ASCII.quote { return nil }
        var uri = SIPURI(scheme: scheme, host: "")
        var hostStart = 0
        if let at = u.firstIndex(of: ASCII.at) {
            var userEnd = at
            if let pc = UnsafeBufferPointer(rebasing: u[0..<at]).firstIndex(of: ASCII.colon) {
                userEnd = pc
                guard all(u, pc + 1, at, ASCII.isPasswordChar), let password = Escaping.unescape(u.string(pc + 1, at)) else { return nil }
                uri.password = password
            }
            guard userEnd > 0, all(u, 0, userEnd, ASCII.isUserChar), let user = Escaping.unescape(u.string(0, userEnd)) else { return nil }
            uri.user = user
            hostStart = at + 1
        }
        // host
        var i = hostStart
        if i < n, u[i] == ASCII.leftBracket {
            var close = i + 1
            while close < n, u[close] != ASCII.rightBracket { close += 1 }
            guard close < n, close > i + 1 else { return nil }
            for k in (i + 1)..<close {
                let b = u[k]
                guard ASCII.hexValue(b) != nil || b == ASCII.colon || b == 46 else { return nil }
            }
            i = close + 1
        } else {
            while i < n, ASCII.isHostChar(u[i]) { i += 1 }
            guard i > hostStart, u[hostStart] != 46, u[hostStart] != 45 else { return nil }
        }
        guard i > hostStart else { return nil }
        uri.host = u.string(hostStart, i)
        // port
        if i < n, u[i] == ASCII.colon {
            i += 1
            let ps = i
            var port = 0
            while i < n, ASCII.isDigit(u[i]) {
                port = port * 10 + Int(u[i] - 48)
                guard port <= 65_535 else { return nil }
                i += 1
            }
            guard i > ps else { return nil }
            uri.port = port
        }
        // parameters
        var paramsEnd = i
        while paramsEnd < n, u[paramsEnd] != ASCII.question { paramsEnd += 1 }
        if i < paramsEnd {
            // uri-parameters = *( ";" uri-parameter )
            guard u[i] == ASCII.semicolon,
                  let params = nameValues(u, i + 1, paramsEnd, separator: ASCII.semicolon, ASCII.isParamChar, valueRequired: false)
            else { return nil }
            uri.parameters = SIPParameters(params)
        }
        // headers = "?" header *( "&" header ), header = hname "=" hvalue
        if paramsEnd < n {
            guard let headers = nameValues(u, paramsEnd + 1, n, separator: ASCII.ampersand, ASCII.isHeaderChar, valueRequired: true)
            else { return nil }
            uri.headers = headers
        }
        return uri
    }

    /// The `separator`-separated `name[=value]` pieces of `lo..<hi` (at least one); nil when a
    /// piece is not valid.
    private static func nameValues(_ u: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, separator: UInt8,
                                   _ allowed: (UInt8) -> Bool, valueRequired: Bool) -> [SIPParameters.Parameter]? {
        var pieces: [SIPParameters.Parameter] = []
        var start = lo
        while true {
            var end = start
            while end < hi, u[end] != separator { end += 1 }
            guard let piece = nameValue(u, start, end, allowed, valueRequired: valueRequired) else { return nil }
            pieces.append(piece)
            if end >= hi { return pieces }
            start = end + 1
        }
    }

    /// `name[=value]` in `lo..<hi`, as written; nil when the name is empty, a byte is not
    /// allowed, or a required value is missing.
    private static func nameValue(_ u: UnsafeBufferPointer<UInt8>, _ lo: Int, _ hi: Int, _ allowed: (UInt8) -> Bool,
                                  valueRequired: Bool) -> SIPParameters.Parameter? {
        var eq = lo
        while eq < hi, u[eq] != ASCII.equals { eq += 1 }
        guard eq > lo, all(u, lo, eq, allowed) else { return nil }
        if eq == hi {
            return valueRequired ? nil : SIPParameters.Parameter(name: u.string(lo, eq), value: nil)
        }
        guard all(u, eq + 1, hi, allowed) else { return nil }
        return SIPParameters.Parameter(name: u.string(lo, eq), value: u.string(eq + 1, hi))
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
