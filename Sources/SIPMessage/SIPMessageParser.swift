import NIOCore

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Parses complete SIP messages: a UDP datagram, or one message cut from a
/// stream by ``SIPFraming``.
///
/// The head is decoded once into a `String`; header values are `Substring`
/// views into it, so a typical REGISTER costs a handful of allocations.
public struct SIPMessageParser: Sendable {
    /// The size and count limits every parse enforces.
    public var limits: SIPParserLimits

    /// A parser enforcing `limits`.
    public init(limits: SIPParserLimits = .default) {
        self.limits = limits
    }

    /// Parses a message from text (tests, tools).
    public func parse(_ text: String) throws(SIPParseError) -> SIPMessage {
        var copy = text
        let result: Result<SIPMessage, SIPParseError> = copy.withUTF8 { buf in
            Result { () throws(SIPParseError) -> SIPMessage in try parse(UnsafeRawBufferPointer(buf)) }
        }
        return try result.get()
    }

    /// Parses a message from bytes.
    public func parse(_ bytes: [UInt8]) throws(SIPParseError) -> SIPMessage {
        let result: Result<SIPMessage, SIPParseError> = bytes.withUnsafeBytes { buf in
            Result { () throws(SIPParseError) -> SIPMessage in try parse(buf) }
        }
        return try result.get()
    }

    /// Parses the readable bytes of a buffer.
    public func parse(_ buffer: ByteBuffer) throws(SIPParseError) -> SIPMessage {
        let result: Result<SIPMessage, SIPParseError> = buffer.withUnsafeReadableBytes { buf in
            Result { () throws(SIPParseError) -> SIPMessage in try parse(buf) }
        }
        return try result.get()
    }

    /// Parses a complete message. Leading CRLFs are skipped (RFC 3261 7.5). Without a
    /// Content-Length header, the body is the rest of the bytes (datagram rule, 18.3).
    public func parse(_ p: UnsafeRawBufferPointer) throws(SIPParseError) -> SIPMessage {
        let n = p.count
        guard n <= limits.maxMessageBytes else { throw SIPParseError(.messageTooLarge(limit: limits.maxMessageBytes)) }
        var s = 0
        while s < n, p[s] == ASCII.cr || p[s] == ASCII.lf { s += 1 }
        guard s < n else { throw SIPParseError(.empty) }

        // End of head: the first empty line.
        var headEnd = n  // exclusive end of head text (before the empty line)
        var bodyStart = n
        var i = s
        while i < n {
            guard let lf = Self.find(ASCII.lf, in: p, from: i, to: n) else { break }
            let next = lf + 1
            if next < n, p[next] == ASCII.lf {
                headEnd = lf + 1
                bodyStart = next + 1
                break
            }
            if next + 1 < n, p[next] == ASCII.cr, p[next + 1] == ASCII.lf {
                headEnd = lf + 1
                bodyStart = next + 2
                break
            }
            i = next
        }

        guard let head = String(validating: UnsafeRawBufferPointer(rebasing: p[s..<headEnd]), as: UTF8.self) else {
            throw SIPParseError(.invalidUTF8)
        }
        let base = s
        let utf8 = head.utf8
        @inline(__always) func sub(_ a: Int, _ b: Int) -> Substring {
            let ia = utf8.index(utf8.startIndex, offsetBy: a - base)
            let ib = utf8.index(ia, offsetBy: b - a)
            return Substring(utf8[ia..<ib])
        }

        // Start line.
        guard let firstLF = Self.find(ASCII.lf, in: p, from: s, to: headEnd) ?? (headEnd > s ? headEnd : nil) else {
            throw SIPParseError(.badStartLine)
        }
        var lineEnd = firstLF
        if lineEnd > s, lineEnd <= n, lineEnd - 1 >= s, lineEnd - 1 < n, p[lineEnd - 1] == ASCII.cr { lineEnd -= 1 }
        guard lineEnd - s <= limits.maxLineBytes else { throw SIPParseError(.lineTooLong(limit: limits.maxLineBytes)) }
        let start = try StartLine.parse(p, s, lineEnd)

        // Header lines.
        var headers = SIPHeaders(reservingCapacity: 16)
        var lineStart = firstLF + 1
        var lastValueStart = 0
        var lastValueEnd = 0
        // A folded value is joined once, when its header ends (not once per continuation line:
        // that restarts from the first line every time and is quadratic in the line count).
        var lastFolded = false
        // Every line counts against the header-field limit, continuation lines included.
        var lineCount = 0
        func finishFolded() {
            if lastFolded {
                headers.fields[headers.count - 1].value = Self.unfold(p, lastValueStart, lastValueEnd)
                lastFolded = false
            }
        }
        while lineStart < headEnd {
            let lf = Self.find(ASCII.lf, in: p, from: lineStart, to: headEnd) ?? headEnd
            var end = lf
            if end > lineStart, p[end - 1] == ASCII.cr { end -= 1 }
            if end == lineStart { break }  // the empty line
            guard end - lineStart <= limits.maxLineBytes else {
                throw SIPParseError(.lineTooLong(limit: limits.maxLineBytes), partialHeaders: headers, isRequest: start.isRequest)
            }
            lineCount += 1
            guard lineCount <= limits.maxHeaderCount else {
                finishFolded()
                throw SIPParseError(.tooManyHeaders(limit: limits.maxHeaderCount), partialHeaders: headers, isRequest: start.isRequest)
            }
            if ASCII.isWhitespace(p[lineStart]) {
                // Folded continuation of the previous header (RFC 3261 7.3.1).
                guard !headers.isEmpty else {
                    throw SIPParseError(.malformedHeaderLine, partialHeaders: headers, isRequest: start.isRequest)
                }
                var e = end
                while e > lineStart, ASCII.isWhitespace(p[e - 1]) { e -= 1 }
                if e > lineStart {
                    lastValueEnd = e
                    lastFolded = true
                }
                lineStart = lf + 1
                continue
            }
            finishFolded()
            guard let colon = Self.find(ASCII.colon, in: p, from: lineStart, to: end) else {
                throw SIPParseError(.malformedHeaderLine, partialHeaders: headers, isRequest: start.isRequest)
            }
            var nameEnd = colon
            while nameEnd > lineStart, ASCII.isWhitespace(p[nameEnd - 1]) { nameEnd -= 1 }
            guard nameEnd > lineStart else {
                throw SIPParseError(.invalidHeaderName, partialHeaders: headers, isRequest: start.isRequest)
            }
            for k in lineStart..<nameEnd where !ASCII.isTokenChar(p[k]) {
                throw SIPParseError(.invalidHeaderName, partialHeaders: headers, isRequest: start.isRequest)
            }
            var vs = colon + 1
            while vs < end, ASCII.isWhitespace(p[vs]) { vs += 1 }
            var ve = end
            while ve > vs, ASCII.isWhitespace(p[ve - 1]) { ve -= 1 }
            let name = SIPHeaderName(bytes: UnsafeRawBufferPointer(rebasing: p[lineStart..<nameEnd]))
            headers.append(SIPHeaderField(name: name, value: sub(vs, ve)))
            lastValueStart = vs
            lastValueEnd = ve
            lineStart = lf + 1
        }

        finishFolded()

        // Body.
        var body: [UInt8] = []
        let available = n - bodyStart
        if let cl = headers[.contentLength] {
            guard let length = Self.parseContentLength(cl) else {
                throw SIPParseError(.invalidContentLength, partialHeaders: headers, isRequest: start.isRequest)
            }
            guard length <= available else {
                throw SIPParseError(.contentLengthBeyondMessage, partialHeaders: headers, isRequest: start.isRequest)
            }
            if length > 0 { body = Array(UnsafeRawBufferPointer(rebasing: p[bodyStart..<(bodyStart + length)])) }
        } else if available > 0 {
            body = Array(UnsafeRawBufferPointer(rebasing: p[bodyStart..<n]))
        }

        switch start {
        case .request(let ms, let me, let us, let ue, let vs, let ve):
            try Self.checkVersion(p, vs, ve, headers: headers, isRequest: true)
            let method = SIPMethod(String(decoding: UnsafeRawBufferPointer(rebasing: p[ms..<me]), as: UTF8.self))
            guard let uri = SIPURI.parse(sub(us, ue)) else {
                throw SIPParseError(.badRequestURI, partialHeaders: headers, isRequest: true)
            }
            try Self.checkMandatory(headers, isRequest: true)
            guard let cseq = SIPCSeq.parse(headers[.cseq] ?? "") else {
                throw SIPParseError(.invalidCSeq, partialHeaders: headers, isRequest: true)
            }
            guard cseq.method == method else {
                throw SIPParseError(.cseqMethodMismatch, partialHeaders: headers, isRequest: true)
            }
            return .request(SIPRequest(method: method, uri: uri, headers: headers, body: body))
        case .response(let vs, let ve, let code, let rs, let re):
            try Self.checkVersion(p, vs, ve, headers: headers, isRequest: false)
            try Self.checkMandatory(headers, isRequest: false)
            guard SIPCSeq.parse(headers[.cseq] ?? "") != nil else {
                throw SIPParseError(.invalidCSeq, partialHeaders: headers, isRequest: false)
            }
            let reason = String(decoding: UnsafeRawBufferPointer(rebasing: p[rs..<re]), as: UTF8.self)
            return .response(SIPResponse(statusCode: code, reasonPhrase: reason, headers: headers, body: body))
        }
    }

    // MARK: Helpers

    @inline(__always)
    static func find(_ byte: UInt8, in p: UnsafeRawBufferPointer, from: Int, to: Int) -> Int? {
        guard from < to, let base = p.baseAddress else { return nil }
        guard let hit = memchr(base + from, Int32(byte), to - from) else { return nil }
        return base.distance(to: UnsafeRawPointer(hit))
    }

    /// Joins a folded value: each CRLF followed by whitespace becomes one space.
    static func unfold(_ p: UnsafeRawBufferPointer, _ a: Int, _ b: Int) -> Substring {
        WorkCounter.count(b - a)
        var out: [UInt8] = []
        out.reserveCapacity(b - a)
        var i = a
        while i < b {
            let c = p[i]
            if c == ASCII.cr || c == ASCII.lf {
                while i < b, p[i] == ASCII.cr || p[i] == ASCII.lf || ASCII.isWhitespace(p[i]) { i += 1 }
                while let last = out.last, ASCII.isWhitespace(last) { out.removeLast() }
                out.append(ASCII.space)
                continue
            }
            out.append(c)
            i += 1
        }
        return Substring(String(decoding: out, as: UTF8.self)).trimmingSIPWhitespace()
    }

    /// Content-Length: 1*DIGIT, nothing else (RFC 3261 20.14).
    static func parseContentLength(_ v: Substring) -> Int? {
        let u = v.utf8
        guard !u.isEmpty, u.count <= 10 else { return nil }
        var n = 0
        for b in u {
            guard ASCII.isDigit(b) else { return nil }
            n = n * 10 + Int(b - 48)
        }
        return n
    }

    static func checkVersion(_ p: UnsafeRawBufferPointer, _ vs: Int, _ ve: Int, headers: SIPHeaders, isRequest: Bool) throws(SIPParseError) {
        // SIP-Version = "SIP" "/" 1*DIGIT "." 1*DIGIT; "SIP" is case-insensitive.
        let v = UnsafeRawBufferPointer(rebasing: p[vs..<ve])
        if v.count == 7, ASCII.lower(v[0]) == 115, ASCII.lower(v[1]) == 105, ASCII.lower(v[2]) == 112,
           v[3] == ASCII.slash, v[4] == 50, v[5] == 46, v[6] == 48 {
            return
        }
        throw SIPParseError(.unsupportedVersion(String(decoding: v, as: UTF8.self)), partialHeaders: headers, isRequest: isRequest)
    }

    static func checkMandatory(_ headers: SIPHeaders, isRequest: Bool) throws(SIPParseError) {
        // RFC 3261 8.1.1: To, From, CSeq, Call-ID, Max-Forwards and Via; Max-Forwards is not
        // enforced because real clients omit it and a registrar does not forward.
        let required: [(SIPHeaderName, String)] = [(.via, "Via"), (.from, "From"), (.to, "To"), (.callID, "Call-ID"), (.cseq, "CSeq")]
        var seen: UInt8 = 0
        for f in headers.fields {
            switch f.name.id {
            case SIPHeaderName.via.id: seen |= 1
            case SIPHeaderName.from.id: seen |= 2
            case SIPHeaderName.to.id: seen |= 4
            case SIPHeaderName.callID.id: seen |= 8
            case SIPHeaderName.cseq.id: seen |= 16
            default: break
            }
        }
        if seen == 31 { return }
        for (k, (_, label)) in required.enumerated() where seen & (1 << k) == 0 {
            throw SIPParseError(.missingHeader(label), partialHeaders: headers, isRequest: isRequest)
        }
    }
}

/// The start line, as byte offsets.
enum StartLine {
    case request(methodStart: Int, methodEnd: Int, uriStart: Int, uriEnd: Int, versionStart: Int, versionEnd: Int)
    case response(versionStart: Int, versionEnd: Int, code: Int, reasonStart: Int, reasonEnd: Int)

    var isRequest: Bool {
        if case .request = self { return true }
        return false
    }

    static func parse(_ p: UnsafeRawBufferPointer, _ s: Int, _ e: Int) throws(SIPParseError) -> StartLine {
        // Split into at most three whitespace-separated parts (the reason phrase may hold spaces).
        var i = s
        func token() -> (Int, Int)? {
            while i < e, ASCII.isWhitespace(p[i]) { i += 1 }
            let a = i
            while i < e, !ASCII.isWhitespace(p[i]) { i += 1 }
            return i > a ? (a, i) : nil
        }
        guard let (a1, b1) = token() else { throw SIPParseError(.badStartLine) }
        let isResponse = b1 - a1 >= 4 && ASCII.lower(p[a1]) == 115 && ASCII.lower(p[a1 + 1]) == 105
            && ASCII.lower(p[a1 + 2]) == 112 && p[a1 + 3] == ASCII.slash
        if isResponse {
            guard let (a2, b2) = token(), b2 - a2 == 3 else { throw SIPParseError(.badStartLine, isRequest: false) }
            var code = 0
            for k in a2..<b2 {
                guard ASCII.isDigit(p[k]) else { throw SIPParseError(.badStatusCode, isRequest: false) }
                code = code * 10 + Int(p[k] - 48)
            }
            guard code >= 100 else { throw SIPParseError(.badStatusCode, isRequest: false) }
            while i < e, ASCII.isWhitespace(p[i]) { i += 1 }
            return .response(versionStart: a1, versionEnd: b1, code: code, reasonStart: i, reasonEnd: e)
        }
        for k in a1..<b1 where !ASCII.isTokenChar(p[k]) { throw SIPParseError(.badStartLine) }
        guard let (a2, b2) = token(), let (a3, b3) = token() else { throw SIPParseError(.badStartLine) }
        while i < e, ASCII.isWhitespace(p[i]) { i += 1 }
        guard i == e else { throw SIPParseError(.badStartLine) }
        // The version must look like SIP/x.y to be reported as unsupported rather than garbage.
        guard b3 - a3 >= 5, ASCII.lower(p[a3]) == 115, ASCII.lower(p[a3 + 1]) == 105, ASCII.lower(p[a3 + 2]) == 112,
              p[a3 + 3] == ASCII.slash else { throw SIPParseError(.badStartLine) }
        return .request(methodStart: a1, methodEnd: b1, uriStart: a2, uriEnd: b2, versionStart: a3, versionEnd: b3)
    }
}
