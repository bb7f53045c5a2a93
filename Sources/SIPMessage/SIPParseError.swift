/// Why a SIP message could not be parsed.
///
/// Every fault names itself in ``reasonPhrase`` so that a transport can answer
/// `400 <reason>` (or `505`/`513`) without inventing its own wording.
public struct SIPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of fault.
    public enum Fault: Sendable, Equatable {
        /// No bytes, or only whitespace.
        case empty
        /// The first line is neither a request line nor a status line.
        case badStartLine
        /// A SIP version other than `SIP/2.0` (answered 505).
        case unsupportedVersion(String)
        /// The Request-URI does not parse.
        case badRequestURI
        /// A status line whose code is not three digits, or is below 100.
        case badStatusCode
        /// The head (start line and header fields) is not valid UTF-8.
        case invalidUTF8
        /// A header name that is not a token.
        case invalidHeaderName
        /// A header line without a colon, or a continuation line with nothing to continue.
        case malformedHeaderLine
        /// A mandatory header (named) is absent (RFC 3261 8.1.1).
        case missingHeader(String)
        /// The value of the named header is malformed.
        case invalidHeaderValue(String)
        /// CSeq is not a sequence number and a method.
        case invalidCSeq
        /// CSeq's method differs from the request's method.
        case cseqMethodMismatch
        /// Content-Length is not a number.
        case invalidContentLength
        /// Content-Length names more bytes than the message holds.
        case contentLengthBeyondMessage
        /// A message from a stream without Content-Length (mandatory there, RFC 3261 18.3).
        case missingContentLength
        /// The message exceeds ``SIPParserLimits/maxMessageBytes`` (answered 513).
        case messageTooLarge(limit: Int)
        /// More header fields than ``SIPParserLimits/maxHeaderCount``.
        case tooManyHeaders(limit: Int)
        /// A header line longer than ``SIPParserLimits/maxLineBytes``.
        case lineTooLong(limit: Int)
        /// The head does not end with an empty line.
        case incompleteHead
    }

    /// The kind of fault.
    public var fault: Fault
    /// What the parser had read before it gave up; lets a transport answer a
    /// broken request when Via, From, To, Call-ID and CSeq were readable.
    public var partialHeaders: SIPHeaders
    /// Whether the start line looked like a request.
    public var isRequest: Bool

    /// An error for `fault`, with what had been read of the headers.
    public init(_ fault: Fault, partialHeaders: SIPHeaders = SIPHeaders(), isRequest: Bool = true) {
        self.fault = fault
        self.partialHeaders = partialHeaders
        self.isRequest = isRequest
    }

    /// The status code a server should answer with (RFC 3261 21.4).
    public var statusCode: Int {
        switch fault {
        case .unsupportedVersion: return 505
        case .messageTooLarge: return 513
        default: return 400
        }
    }

    /// A reason phrase naming the fault, fit for a status line.
    public var reasonPhrase: String {
        switch fault {
        case .empty: return "Empty Message"
        case .badStartLine: return "Bad Start Line"
        case .unsupportedVersion: return "Version Not Supported"
        case .badRequestURI: return "Bad Request-URI"
        case .badStatusCode: return "Bad Status Code"
        case .invalidUTF8: return "Invalid UTF-8 In Header"
        case .invalidHeaderName: return "Invalid Header Name"
        case .malformedHeaderLine: return "Malformed Header Line"
        case .missingHeader(let name): return "Missing \(name) Header"
        case .invalidHeaderValue(let name): return "Invalid \(name) Header"
        case .invalidCSeq: return "Invalid CSeq Header"
        case .cseqMethodMismatch: return "CSeq Method Does Not Match Request Method"
        case .invalidContentLength: return "Invalid Content-Length"
        case .contentLengthBeyondMessage: return "Content-Length Beyond Message"
        case .missingContentLength: return "Missing Content-Length"
        case .messageTooLarge: return "Message Too Large"
        case .tooManyHeaders: return "Too Many Headers"
        case .lineTooLong: return "Header Line Too Long"
        case .incompleteHead: return "Incomplete Message Head"
        }
    }

    /// The status line an answer would carry: `400 Invalid CSeq Header`.
    public var description: String { "\(statusCode) \(reasonPhrase)" }

    /// Equal when the faults are equal; the partial headers do not count.
    public static func == (lhs: SIPParseError, rhs: SIPParseError) -> Bool { lhs.fault == rhs.fault }
}

/// Limits the parser enforces. Defaults follow the project's design: 64 KiB per
/// message, 256 header fields, 8 KiB per header line.
public struct SIPParserLimits: Sendable, Equatable {
    /// The largest message accepted, head and body, in bytes (RFC 3261 18.1.1: UDP must take what fits a datagram).
    public var maxMessageBytes: Int
    /// The most header fields a message may have.
    public var maxHeaderCount: Int
    /// The longest header line (after unfolding), in bytes.
    public var maxLineBytes: Int

    /// Limits; every parameter sets the property of the same name.
    public init(maxMessageBytes: Int = 65_536, maxHeaderCount: Int = 256, maxLineBytes: Int = 8_192) {
        self.maxMessageBytes = maxMessageBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxLineBytes = maxLineBytes
    }

    /// 64 KiB per message, 256 header fields, 8 KiB per line.
    public static let `default` = SIPParserLimits()
}
