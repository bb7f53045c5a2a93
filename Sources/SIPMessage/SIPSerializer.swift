import NIOCore
import Synchronization

// Canonical serialization: start line, header fields in order with the canonical
// spelling of known names, and a Content-Length computed from the body (any
// Content-Length field in `headers` is ignored).

extension SIPRequest {
    /// The wire form.
    /// The message's bytes on the wire: start line, headers in order, empty line, body.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(estimatedSize)
        writeStartLine(into: &out)
        SIPWire.writeHeadersAndBody(headers, body, into: &out)
        return out
    }

    /// Writes the wire form into a buffer.
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeBytes(serialized())
    }

    var estimatedSize: Int { 64 + SIPWire.estimate(headers) + body.count }

    private func writeStartLine(into out: inout [UInt8]) {
        out.append(contentsOf: method.rawValue.utf8)
        out.append(ASCII.space)
        out.append(contentsOf: uri.description.utf8)
        out.append(contentsOf: " SIP/2.0\r\n".utf8)
    }
}

extension SIPResponse {
    /// The wire form.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64 + SIPWire.estimate(headers) + body.count)
        out.append(contentsOf: "SIP/2.0 ".utf8)
        SIPWire.appendDecimal(statusCode, to: &out)
        out.append(ASCII.space)
        out.append(contentsOf: reasonPhrase.utf8)
        out.append(ASCII.cr)
        out.append(ASCII.lf)
        SIPWire.writeHeadersAndBody(headers, body, into: &out)
        return out
    }

    /// Writes the wire form into a buffer.
    public func write(into buffer: inout ByteBuffer) {
        buffer.writeBytes(serialized())
    }
}

extension SIPMessage {
    public func serialized() -> [UInt8] {
        switch self {
        case .request(let r): return r.serialized()
        case .response(let r): return r.serialized()
        }
    }
}

enum SIPWire {
    static func estimate(_ headers: SIPHeaders) -> Int {
        var n = 32
        for f in headers.fields { n += f.name.name.utf8.count + f.value.utf8.count + 4 }
        return n
    }

    static func writeHeadersAndBody(_ headers: SIPHeaders, _ body: [UInt8], into out: inout [UInt8]) {
        for f in headers.fields where f.name != .contentLength {
            out.append(contentsOf: f.name.name.utf8)
            out.append(ASCII.colon)
            out.append(ASCII.space)
            appendUTF8(f.value, to: &out)
            out.append(ASCII.cr)
            out.append(ASCII.lf)
        }
        out.append(contentsOf: "Content-Length: ".utf8)
        appendDecimal(body.count, to: &out)
        out.append(contentsOf: [ASCII.cr, ASCII.lf, ASCII.cr, ASCII.lf])
        out.append(contentsOf: body)
    }

    @inline(__always)
    static func appendUTF8(_ s: Substring, to out: inout [UInt8]) {
        let done: Void? = s.utf8.withContiguousStorageIfAvailable { out.append(contentsOf: $0) }
        if done == nil { out.append(contentsOf: s.utf8) }
    }

    static func appendDecimal(_ value: Int, to out: inout [UInt8]) {
        if value == 0 {
            out.append(48)
            return
        }
        var v = value
        if v < 0 {
            out.append(45)
            v = -v
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                     UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        withUnsafeMutableBytes(of: &digits) { d in
            while v > 0 {
                d[count] = UInt8(48 + v % 10)
                v /= 10
                count += 1
            }
            for k in stride(from: count - 1, through: 0, by: -1) { out.append(d[k]) }
        }
    }
}

extension SIPResponse {
    /// Builds a response to `request` per RFC 3261 8.2.6: Via fields copied in order,
    /// From, To (with `toTag` added when the request's To has none), Call-ID and CSeq;
    /// `server` adds a Server header.
    public init(to request: SIPRequest, statusCode: Int, reasonPhrase: String? = nil, toTag: String? = nil,
                server: String? = nil) {
        self.init(statusCode: statusCode, reasonPhrase: reasonPhrase)
        self.headers = SIPResponse.copiedHeaders(from: request.headers, statusCode: statusCode, toTag: toTag)
        if let server { headers.add(.server, server) }
    }

    /// Builds a response from whatever headers a request had (e.g. the partial headers of a
    /// parse error); nil when Via, From, To, Call-ID or CSeq is missing, since such a
    /// response could not be matched or routed.
    public init?(answering headers: SIPHeaders, statusCode: Int, reasonPhrase: String? = nil, toTag: String? = nil,
                 server: String? = nil) {
        for name in [SIPHeaderName.via, .from, .to, .callID, .cseq] where !headers.contains(name) { return nil }
        self.init(statusCode: statusCode, reasonPhrase: reasonPhrase)
        self.headers = SIPResponse.copiedHeaders(from: headers, statusCode: statusCode, toTag: toTag)
        if let server { self.headers.add(.server, server) }
    }

    static func copiedHeaders(from request: SIPHeaders, statusCode: Int, toTag: String?) -> SIPHeaders {
        var h = SIPHeaders(reservingCapacity: 10)
        for f in request.fields where f.name == .via { h.append(f) }
        for f in request.fields {
            switch f.name {
            case .from, .callID, .cseq:
                h.append(f)
            case .to:
                if statusCode > 100, let toTag, !SIPResponse.hasTag(f.value) {
                    h.append(SIPHeaderField(name: .to, value: String(f.value) + ";tag=" + toTag))
                } else {
                    h.append(f)
                }
            default:
                continue
            }
        }
        return h
    }

    /// Whether a From/To value carries a `tag` header parameter.
    static func hasTag(_ value: Substring) -> Bool {
        HeaderSplitter.hasHeaderParameter(value, named: "tag")
    }

    /// A tag for To headers: 48 bits, hex, unique within the process and unpredictable
    /// across processes (a random start, then a counter through a bijective mixer;
    /// RFC 3261 19.3 asks for uniqueness, not secrecy). No system call per tag.
    public static func randomTag() -> String {
        let n = TagSource.counter.wrappingAdd(1, ordering: .relaxed).newValue
        var z = (n &+ TagSource.seed) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 29)) &* 0xBF58_476D_1CE4_E5B9
        z ^= z >> 32
        return String(z & 0xFFFF_FFFF_FFFF, radix: 16)
    }
}

enum TagSource {
    static let seed: UInt64 = {
        var g = SystemRandomNumberGenerator()
        return g.next()
    }()
    static let counter = Atomic<UInt64>(0)
}
