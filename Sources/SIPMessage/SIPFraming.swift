/// The stream contract: how a TCP/TLS transport cuts messages out of a byte
/// stream (RFC 3261 18.3): the head up to the empty line, then exactly
/// Content-Length bytes, which is mandatory on streams.
public enum SIPFraming {
    /// What the next bytes of a stream hold.
    public enum Frame: Sendable, Equatable {
        /// Not enough bytes yet.
        case needMoreData
        /// A CRLFCRLF keep-alive ping (RFC 5626 4.4.1) of this many bytes; answer with CRLF.
        case ping(bytes: Int)
        /// CR/LF bytes between messages to be dropped silently.
        case skip(bytes: Int)
        /// A complete message: `headBytes` including the empty line, then `bodyBytes`.
        case message(headBytes: Int, bodyBytes: Int)
        /// The stream cannot be framed; answer 400/513 if possible and close.
        case error(SIPParseError)
    }

    /// Examines the start of `p`. Caps are checked before waiting for more bytes:
    /// a head longer than `limits.maxMessageBytes` without an empty line, or a
    /// Content-Length that would make the message exceed it, is an error at once.
    public static func frame(_ p: UnsafeRawBufferPointer, limits: SIPParserLimits = .default) -> Frame {
        var progress = Progress()
        return frame(p, limits: limits, progress: &progress)
    }

    /// What earlier calls learnt about the message at the start of the buffer, so that
    /// the next call does not look at the same bytes again.
    public struct Progress: Sendable, Equatable {
        /// How far the head has been searched for its empty line.
        public var scanned = 0
        /// The head's and the body's sizes, once the head is complete.
        public var sizes: (head: Int, body: Int)? {
            get { headBytes < 0 ? nil : (headBytes, bodyBytes) }
            set {
                headBytes = newValue?.head ?? -1
                bodyBytes = newValue?.body ?? 0
            }
        }
        private var headBytes = -1
        private var bodyBytes = 0

        /// Nothing learnt yet: the state for a new message.
        public init() {}
    }

    /// As ``frame(_:limits:)``, resuming where the previous call on the same bytes stopped.
    /// Start with a fresh `progress` for each message and keep it while more bytes of the
    /// same message arrive: a message delivered in many small reads (one-byte TLS records)
    /// is then examined once in all, not once per read.
    public static func frame(_ p: UnsafeRawBufferPointer, limits: SIPParserLimits = .default,
                             progress: inout Progress) -> Frame {
        let n = p.count
        if let (head, body) = progress.sizes {
            return n >= head + body ? .message(headBytes: head, bodyBytes: body) : .needMoreData
        }
        guard n > 0 else { return .needMoreData }
        if p[0] == ASCII.cr || p[0] == ASCII.lf {
            let ping: [UInt8] = [13, 10, 13, 10]
            var k = 0
            while k < n, k < 4, p[k] == ping[k] { k += 1 }
            if k == 4 { return .ping(bytes: 4) }
            if k == n { return .needMoreData }  // a prefix of a ping so far
            var skip = 0
            while skip < n, p[skip] == ASCII.cr || p[skip] == ASCII.lf { skip += 1 }
            if skip == n, skip < 4 { return .needMoreData }
            return .skip(bytes: skip)
        }
        // Find the empty line, from where the last search stopped.
        let resumeAt = min(max(progress.scanned, 0), n)
        var i = resumeAt
        var headBytes = -1
        let searchLimit = min(n, limits.maxMessageBytes)
        while i < searchLimit {
            if p[i] == ASCII.lf {
                if i + 1 < n, p[i + 1] == ASCII.lf { headBytes = i + 2; break }
                if i + 2 < n, p[i + 1] == ASCII.cr, p[i + 2] == ASCII.lf { headBytes = i + 3; break }
            }
            i += 1
        }
        WorkCounter.count(i - resumeAt)
        guard headBytes > 0 else {
            if n >= limits.maxMessageBytes { return .error(SIPParseError(.messageTooLarge(limit: limits.maxMessageBytes))) }
            // The last two bytes may start an empty line that the next read completes.
            progress.scanned = max(0, searchLimit - 2)
            return .needMoreData
        }
        WorkCounter.count(headBytes)
        guard let length = contentLength(UnsafeRawBufferPointer(rebasing: p[0..<headBytes])) else {
            return .error(SIPParseError(.missingContentLength))
        }
        guard length >= 0 else { return .error(SIPParseError(.invalidContentLength)) }
        guard headBytes + length <= limits.maxMessageBytes else {
            return .error(SIPParseError(.messageTooLarge(limit: limits.maxMessageBytes)))
        }
        if n >= headBytes + length { return .message(headBytes: headBytes, bodyBytes: length) }
        progress.sizes = (headBytes, length)
        return .needMoreData
    }

    /// The Content-Length (or `l`) value in a head: nil when absent, -1 when malformed.
    static func contentLength(_ head: UnsafeRawBufferPointer) -> Int? {
        guard let value = headerValue(head, name: "content-length", compact: UInt8(ascii: "l")) else { return nil }
        guard !value.isEmpty, value.count <= 9 else { return -1 }
        var v = 0
        for j in value {
            guard ASCII.isDigit(head[j]) else { return -1 }
            v = v * 10 + Int(head[j] - 48)
        }
        return v
    }

    /// Where the value of the first header called `name` (lower case) or `compact` stands in
    /// the head of a message, trimmed; nil when there is none before the empty line. A scan of
    /// the raw bytes, for decisions taken before a message is parsed (framing, which event
    /// loop a message goes to).
    package static func headerValue(_ head: UnsafeRawBufferPointer, name: StaticString, compact: UInt8) -> Range<Int>? {
        let n = head.count
        var lineStart = 0
        // Skip the start line.
        while lineStart < n, head[lineStart] != ASCII.lf { lineStart += 1 }
        lineStart += 1
        while lineStart < n {
            var lineEnd = lineStart
            while lineEnd < n, head[lineEnd] != ASCII.lf { lineEnd += 1 }
            // The empty line ends the head.
            if lineEnd == lineStart || (lineEnd == lineStart + 1 && head[lineStart] == ASCII.cr) { return nil }
            var nameEnd = lineStart
            while nameEnd < lineEnd, ASCII.isTokenChar(head[nameEnd]) { nameEnd += 1 }
            if isName(UnsafeRawBufferPointer(rebasing: head[lineStart..<nameEnd]), name, compact) {
                var k = nameEnd
                while k < lineEnd, ASCII.isWhitespace(head[k]) { k += 1 }
                if k < lineEnd, head[k] == ASCII.colon {
                    k += 1
                    while k < lineEnd, ASCII.isWhitespace(head[k]) { k += 1 }
                    var e = lineEnd
                    while e > k, head[e - 1] == ASCII.cr || ASCII.isWhitespace(head[e - 1]) { e -= 1 }
                    return k..<e
                }
            }
            lineStart = lineEnd + 1
        }
        return nil
    }

    private static func isName(_ field: UnsafeRawBufferPointer, _ name: StaticString, _ compact: UInt8) -> Bool {
        if field.count == 1 { return ASCII.lower(field[0]) == compact }
        guard field.count == name.utf8CodeUnitCount else { return false }
        return name.withUTF8Buffer { t in
            for k in 0..<t.count where ASCII.lower(field[k]) != t[k] { return false }
            return true
        }
    }
}
