/// Why a SIP message could not be parsed.
///
/// Every fault names itself in ``reasonPhrase`` so that a transport can answer
/// `400 <reason>` (or `505`/`513`) without inventing its own wording.
public struct SIPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The kind of fault.
    public enum Fault: Sendable, Equatable {
        case empty
        case badStartLine
        case unsupportedVersion(String)
        case badRequestURI
        case badStatusCode
        case invalidUTF8
        case invalidHeaderName
        case malformedHeaderLine
        case missingHeader(String)
        case invalidHeaderValue(String)
        case invalidCSeq
        case cseqMethodMismatch
        case invalidContentLength
        case contentLengthBeyondMessage
        case missingContentLength
        case messageTooLarge(limit: Int)
        case tooManyHeaders(limit: Int)
        case lineTooLong(limit: Int)
        case incompleteHead
    }

    /// The kind of fault.
    public var fault: Fault
    /// What the parser had read before it gave up; lets a transport answer a
    /// broken request when Via, From, To, Call-ID and CSeq were readable.
    public var partialHeaders: SIPHeaders
    /// Whether the start line looked like a request.
    public var isRequest: Bool

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

    public var description: String { "\(statusCode) \(reasonPhrase)" }

    public static func == (lhs: SIPParseError, rhs: SIPParseError) -> Bool { lhs.fault == rhs.fault }
}

/// Limits the parser enforces. Defaults follow the project's design: 64 KiB per
/// message, 256 header fields, 8 KiB per header line.
public struct SIPParserLimits: Sendable, Equatable {
    public var maxMessageBytes: Int
    public var maxHeaderCount: Int
    public var maxLineBytes: Int

    public init(maxMessageBytes: Int = 65_536, maxHeaderCount: Int = 256, maxLineBytes: Int = 8_192) {
        self.maxMessageBytes = maxMessageBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxLineBytes = maxLineBytes
    }

    public static let `default` = SIPParserLimits()
}
