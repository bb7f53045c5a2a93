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

/// Frames SIP messages on a stream (RFC 3261 18.3): headers up to the empty line, then
/// exactly Content-Length bytes (mandatory; compact `l` too). Caps on the head and on
/// Content-Length are checked before any body byte is buffered. After a framing error it
/// discards everything.
public struct SIPStreamDecoder: ByteToMessageDecoder {
    /// A whole message, or the framing error that ended the stream.
    public typealias InboundOut = SIPStreamItem

    let limits: SIPParserLimits
    private var failed = false
    /// What is known of the message being received: each read resumes there, so a message
    /// arriving in many small pieces (one-byte TLS records) is examined once in all.
    private var progress = SIPFraming.Progress()

    /// A decoder with the given caps on the head, the header count and Content-Length.
    public init(limits: SIPParserLimits = .default) {
        self.limits = limits
    }

    /// Emits every complete message in `buffer`; resumes from the saved progress on the next read.
    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if failed {
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            return .needMoreData
        }
        var progress = self.progress
        let frame = buffer.withUnsafeReadableBytes { SIPFraming.frame($0, limits: limits, progress: &progress) }
        // Bytes are consumed in every case but needMoreData: the next message starts afresh.
        self.progress = SIPFraming.Progress()
        switch frame {
        case .needMoreData:
            self.progress = progress
            return .needMoreData
        case .skip(let n):
            buffer.moveReaderIndex(forwardBy: n)
            return .continue
        case .ping(let n):
            buffer.moveReaderIndex(forwardBy: n)
            context.fireChannelRead(wrapInboundOut(.ping))
            return .continue
        case .message(let head, let body):
            guard let message = buffer.readSlice(length: head + body) else { return .needMoreData }
            context.fireChannelRead(wrapInboundOut(.message(message)))
            return .continue
        case .error(let error):
            failed = true
            // Hand up as much of the head as is there (bounded by the message cap) for the 400.
            let headBytes = min(buffer.readableBytes, limits.maxMessageBytes)
            let head = buffer.readSlice(length: headBytes) ?? ByteBuffer()
            buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
            context.fireChannelRead(wrapInboundOut(.framingError(error, head: head)))
            return .needMoreData
        }
    }

    /// At the end of the stream: the last complete messages; a partial one is dropped.
    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // A half-received message at EOF is dropped: nothing can answer it.
        while try decode(context: context, buffer: &buffer) == .continue {}
        buffer.moveReaderIndex(forwardBy: buffer.readableBytes)
        return .needMoreData
    }
}
