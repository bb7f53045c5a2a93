public import NIOCore
public import SIPMessage

/// What the stream decoder cuts out of a TCP/TLS byte stream.
public enum SIPStreamItem: Sendable {
    /// One complete SIP message.
    case message(ByteBuffer)
    /// A CRLFCRLF keep-alive ping (RFC 5626 4.4.1), to be answered with CRLF.
    case ping
    /// The stream cannot be framed; `head` holds what was readable of the message head
    /// so that a 400 can still be answered. The connection must be closed.
    case framingError(SIPParseError, head: ByteBuffer)
}

/// How a connection's handler gets ``SIPStreamItem``s out of what its pipeline hands it:
/// bytes are appended, then items taken one at a time (so that a handler that closes the
/// connection while handling one item, or is re-entered, never finds the framing half done).
protocol SIPInboundFraming: SendableMetatype {
    /// What the handler below hands up: bytes of a stream, or items framed already.
    associatedtype Input
    mutating func append(_ input: Input)
    /// The next complete item, or nil when more input is needed.
    mutating func next() -> SIPStreamItem?
}

/// Frames SIP messages on a stream (RFC 3261 18.3): headers up to the empty line, then
/// exactly Content-Length bytes (mandatory; compact `l` too). Caps on the head and on
/// Content-Length are checked before any body byte is buffered. After a framing error it
/// discards everything.
///
/// Kept inside the connection handler instead of in a `ByteToMessageHandler` of its own:
/// every idle TCP or TLS connection carried that handler, its pipeline context and its
/// buffer ring (about 0.5 KiB). Bytes are kept only while a message is unfinished: every
/// byte held belongs to the message being framed, whose head and body the limits cap, or
/// to the rest of the one read that completed it.
public struct SIPStreamDecoder: SIPInboundFraming {
    let limits: SIPParserLimits
    private var failed = false
    /// Unframed bytes; nil when none (an idle connection holds no buffer).
    private var pending: ByteBuffer?
    /// What is known of the message being received: each read resumes there, so a message
    /// arriving in many small pieces (one-byte TLS records) is examined once in all.
    private var progress = SIPFraming.Progress()

    /// A decoder with the given caps on the head, the header count and Content-Length.
    public init(limits: SIPParserLimits = .default) {
        self.limits = limits
    }

    /// Bytes received but not yet framed.
    public var bufferedBytes: Int { pending?.readableBytes ?? 0 }

    /// Adds bytes read from the stream.
    public mutating func append(_ bytes: ByteBuffer) {
        guard !failed, bytes.readableBytes > 0 else { return }
        if pending == nil {
            pending = bytes
        } else {
            pending!.writeImmutableBuffer(bytes)
        }
    }

    /// The next complete message, ping or framing error; nil when more bytes are needed.
    public mutating func next() -> SIPStreamItem? {
        guard !failed, var buffer = pending else { return nil }
        pending = nil  // the buffer is uniquely referenced while it is worked on
        defer { pending = buffer.readableBytes > 0 && !failed ? buffer : nil }
        while true {
            var progress = self.progress
            let frame = buffer.withUnsafeReadableBytes { SIPFraming.frame($0, limits: limits, progress: &progress) }
            // Bytes are consumed in every case but needMoreData: the next message starts afresh.
            self.progress = SIPFraming.Progress()
            switch frame {
            case .needMoreData:
                self.progress = progress
                return nil
            case .skip(let n):
                buffer.moveReaderIndex(forwardBy: n)
                if buffer.readableBytes == 0 { return nil }
            case .ping(let n):
                buffer.moveReaderIndex(forwardBy: n)
                return .ping
            case .message(let head, let body):
                guard let message = buffer.readSlice(length: head + body) else { return nil }
                return .message(message)
            case .error(let error):
                failed = true
                // Hand up as much of the head as is there (bounded by the message cap) for the 400.
                let head = buffer.readSlice(length: min(buffer.readableBytes, limits.maxMessageBytes)) ?? ByteBuffer()
                return .framingError(error, head: head)
            }
        }
    }
}

/// Over WebSocket the messages come framed already (RFC 7118 5: one SIP message per
/// WebSocket message): each item is passed on as it is.
struct SIPFramedItems: SIPInboundFraming {
    private var item: SIPStreamItem?

    mutating func append(_ input: SIPStreamItem) {
        // Items are taken one by one as they arrive: at most one waits.
        assert(item == nil)
        item = input
    }

    mutating func next() -> SIPStreamItem? {
        defer { item = nil }
        return item
    }
}
