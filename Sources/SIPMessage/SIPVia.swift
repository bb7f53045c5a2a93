/// One Via header value (RFC 3261 20.42, RFC 3581).
public struct SIPVia: Sendable, Hashable, CustomStringConvertible {
    /// `SIP` in `SIP/2.0/UDP`.
    public var protocolName: String
    /// `2.0`.
    public var protocolVersion: String
    /// The transport, uppercased: `UDP`, `TCP`, `TLS`, `SCTP`, `WS`, `WSS`...
    public var transport: String
    /// The sent-by host (IPv6 with brackets, as written).
    public var host: String
    /// The sent-by port, when written.
    public var port: Int?
    /// Parameters (`branch`, `received`, `rport`, `maddr`, `ttl`, `alias`, ...).
    public var parameters: SIPParameters

    /// RFC 3261 8.1.1.7: branches that start with this cookie are globally unique.
    public static let magicCookie = "z9hG4bK"

    /// A `SIP/2.0` Via with the transport uppercased.
    public init(transport: String, host: String, port: Int? = nil, parameters: SIPParameters = SIPParameters()) {
        self.protocolName = "SIP"
        self.protocolVersion = "2.0"
        self.transport = transport.uppercased()
        self.host = host
        self.port = port
        self.parameters = parameters
    }

    /// The `branch` parameter: the transaction id (RFC 3261 8.1.1.7).
    public var branch: String? { parameters.value("branch") }
    /// The `received` parameter: the address the request really came from (RFC 3261 18.2.1).
    public var received: String? { parameters.value("received") }
    /// `rport` as a number when filled in.
    public var rport: Int? { parameters.value("rport").flatMap { Int($0) } }
    /// Whether `rport` is present, with or without value (RFC 3581).
    public var hasRport: Bool { parameters.contains("rport") }
    /// Whether the branch carries the RFC 3261 magic cookie.
    public var hasMagicCookie: Bool { branch?.hasPrefix(SIPVia.magicCookie) ?? false }

    /// Parses one Via value (after comma splitting); nil when malformed.
    public static func parse(_ text: Substring) -> SIPVia? {
        let u = text.utf8
        // sent-protocol = protocol-name SLASH protocol-version SLASH transport (LWS around '/' allowed)
        // The two fields before the transport, without an array for them.
        var name: Substring?
        var version: Substring?
        var i = u.startIndex
        var segStart = i
        while i < u.endIndex, version == nil {
            if u[i] == ASCII.slash {
                let field = Substring(u[segStart..<i]).trimmingSIPWhitespace()
                if name == nil { name = field } else { version = field }
                segStart = u.index(after: i)
            }
            i = u.index(after: i)
        }
        guard let name, let version else { return nil }
        // transport: token after whitespace
        var j = segStart
        while j < u.endIndex, ASCII.isWhitespace(u[j]) { j = u.index(after: j) }
        let ts = j
        while j < u.endIndex, ASCII.isTokenChar(u[j]) { j = u.index(after: j) }
        guard j > ts, name.utf8.allSatisfy(ASCII.isTokenChar), !name.isEmpty,
              version.utf8.allSatisfy(ASCII.isTokenChar), !version.isEmpty else { return nil }
        let transport = Substring(u[ts..<j])
        // LWS then sent-by
        var k = j
        while k < u.endIndex, ASCII.isWhitespace(u[k]) { k = u.index(after: k) }
        guard k > j else { return nil }
        let hostStart = k
        if k < u.endIndex, u[k] == ASCII.leftBracket {
            guard let close = u[k...].firstIndexOfByte(ASCII.rightBracket) else { return nil }
            k = u.index(after: close)
        } else {
            while k < u.endIndex, ASCII.isHostChar(u[k]) { k = u.index(after: k) }
        }
        guard k > hostStart else { return nil }
        var via = SIPVia(transport: String(transport), host: String(Substring(u[hostStart..<k])))
        via.protocolName = String(name)
        via.protocolVersion = String(version)
        while k < u.endIndex, ASCII.isWhitespace(u[k]) { k = u.index(after: k) }
        if k < u.endIndex, u[k] == ASCII.colon {
            k = u.index(after: k)
            while k < u.endIndex, ASCII.isWhitespace(u[k]) { k = u.index(after: k) }
            var port = 0
            let ps = k
            while k < u.endIndex, ASCII.isDigit(u[k]) {
                port = port * 10 + Int(u[k] - 48)
                guard port <= 65_535 else { return nil }
                k = u.index(after: k)
            }
            guard k > ps else { return nil }
            via.port = port
        }
        let rest = Substring(u[k...]).trimmingSIPWhitespace()
        if !rest.isEmpty {
            guard rest.utf8.first == ASCII.semicolon, let params = HeaderSplitter.parameters(rest, allowEmpty: false) else { return nil }
            via.parameters = params
        }
        return via
    }

    /// The header value: `SIP/2.0/UDP host:port;params`.
    public var description: String {
        var out = "\(protocolName)/\(protocolVersion)/\(transport) \(host)"
        if let port { out += ":\(port)" }
        parameters.write(to: &out)
        return out
    }
}

extension SIPVia {
    /// `value` (one Via value) with `=rport` written after its valueless `rport` parameter and
    /// `;received=` appended; nil when the text is not plain enough to edit safely (a quote,
    /// or no valueless `rport` where one is to be filled).
    package static func stampedText(_ value: Substring, rport: String?, received: String?) -> String? {
        let text = value.trimmingSIPWhitespace()
        let u = text.utf8
        guard !u.contains(ASCII.quote) else { return nil }
        var out = ""
        out.reserveCapacity(u.count + 8 + (received.map { $0.utf8.count + 10 } ?? 0))
        if let rport {
            // `;` LWS `rport` LWS, then `;` or the end: the place right after the name.
            var at: Substring.UTF8View.Index?
            var i = u.startIndex
            while at == nil, let semi = u[i...].firstIndexOfByte(ASCII.semicolon) {
                var j = u.index(after: semi)
                while j < u.endIndex, ASCII.isWhitespace(u[j]) { j = u.index(after: j) }
                var k = j
                var matched = true
                for c in "rport".utf8 {
                    guard k < u.endIndex, u[k] | 0x20 == c else { matched = false; break }
                    k = u.index(after: k)
                }
                if matched {
                    var l = k
                    while l < u.endIndex, ASCII.isWhitespace(u[l]) { l = u.index(after: l) }
                    if l == u.endIndex || u[l] == ASCII.semicolon { at = k } else if u[l] == ASCII.equals { return nil }
                }
                i = u.index(after: semi)
            }
            guard let at else { return nil }
            out += text[..<at]
            out += "="
            out += rport
            out += text[at...]
        } else {
            out += text
        }
        if let received {
            out += ";received="
            out += received
        }
        return out
    }
}

/// The CSeq header (RFC 3261 20.16).
public struct SIPCSeq: Sendable, Hashable, CustomStringConvertible {
    /// The sequence number, below 2^31.
    public var sequence: UInt32
    /// The method; in a request it must equal the request's method.
    public var method: SIPMethod

    /// A CSeq value.
    public init(sequence: UInt32, method: SIPMethod) {
        self.sequence = sequence
        self.method = method
    }

    /// Parses `4711 REGISTER`; nil when malformed or the number is 2^31 or more.
    public static func parse(_ text: Substring) -> SIPCSeq? {
        text.utf8.withBytes { u -> SIPCSeq? in
            guard let r = u.trimmedRange(0, u.count) else { return nil }
            var i = r.lowerBound
            var n: UInt64 = 0
            while i < r.upperBound, ASCII.isDigit(u[i]) {
                n = n * 10 + UInt64(u[i] - 48)
                guard n < 1 << 31 else { return nil }
                i += 1
            }
            guard i > r.lowerBound, i < r.upperBound, ASCII.isWhitespace(u[i]) else { return nil }
            while i < r.upperBound, ASCII.isWhitespace(u[i]) { i += 1 }
            guard i < r.upperBound, u.all(i, r.upperBound, ASCII.isTokenChar) else { return nil }
            return SIPCSeq(sequence: UInt32(n), method: SIPMethod(u.string(i, r.upperBound)))
        }
    }

    /// The header value: `4711 REGISTER`.
    public var description: String { "\(sequence) \(method)" }
}
