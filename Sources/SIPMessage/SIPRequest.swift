/// A SIP request (RFC 3261 7.1).
public struct SIPRequest: Sendable, Hashable {
    /// The request method.
    public var method: SIPMethod
    /// The Request-URI.
    public var uri: SIPURI
    /// The header fields, in order.
    public var headers: SIPHeaders
    /// The body; Content-Length is always written from its size.
    public var body: [UInt8]

    /// A request; the serializer adds Content-Length from the body's size.
    public init(method: SIPMethod, uri: SIPURI, headers: SIPHeaders = SIPHeaders(), body: [UInt8] = []) {
        self.method = method
        self.uri = uri
        self.headers = headers
        self.body = body
    }
}

/// A SIP response (RFC 3261 7.2).
public struct SIPResponse: Sendable, Hashable {
    /// The status code, 100 to 699.
    public var statusCode: Int
    /// The reason phrase of the status line.
    public var reasonPhrase: String
    /// The header fields, in order.
    public var headers: SIPHeaders
    /// The body; Content-Length is always written from its size.
    public var body: [UInt8]

    /// A response; without a reason phrase, ``defaultReasonPhrase(_:)`` supplies one.
    public init(statusCode: Int, reasonPhrase: String? = nil, headers: SIPHeaders = SIPHeaders(), body: [UInt8] = []) {
        self.statusCode = statusCode
        self.reasonPhrase = reasonPhrase ?? SIPResponse.defaultReasonPhrase(statusCode)
        self.headers = headers
        self.body = body
    }

    /// The reason phrases of RFC 3261 21 and its extensions.
    public static func defaultReasonPhrase(_ code: Int) -> String {
        switch code {
        case 100: return "Trying"
        case 180: return "Ringing"
        case 183: return "Session Progress"
        case 200: return "OK"
        case 202: return "Accepted"
        case 301: return "Moved Permanently"
        case 302: return "Moved Temporarily"
        case 305: return "Use Proxy"
        case 400: return "Bad Request"
        case 401: return "Unauthorized"
        case 403: return "Forbidden"
        case 404: return "Not Found"
        case 405: return "Method Not Allowed"
        case 407: return "Proxy Authentication Required"
        case 408: return "Request Timeout"
        case 410: return "Gone"
        case 413: return "Request Entity Too Large"
        case 414: return "Request-URI Too Long"
        case 415: return "Unsupported Media Type"
        case 416: return "Unsupported URI Scheme"
        case 420: return "Bad Extension"
        case 421: return "Extension Required"
        case 423: return "Interval Too Brief"
        case 429: return "Too Many Requests"
        case 439: return "First Hop Lacks Outbound Support"
        case 480: return "Temporarily Unavailable"
        case 481: return "Call/Transaction Does Not Exist"
        case 482: return "Loop Detected"
        case 483: return "Too Many Hops"
        case 486: return "Busy Here"
        case 500: return "Server Internal Error"
        case 501: return "Not Implemented"
        case 503: return "Service Unavailable"
        case 504: return "Server Time-out"
        case 505: return "Version Not Supported"
        case 513: return "Message Too Large"
        case 600: return "Busy Everywhere"
        case 603: return "Decline"
        default: return "Unknown"
        }
    }
}

/// A parsed message: a request or a response.
public enum SIPMessage: Sendable, Hashable {
    /// A request.
    case request(SIPRequest)
    /// A response.
    case response(SIPResponse)

    /// The message's header fields, whichever kind it is.
    public var headers: SIPHeaders {
        switch self {
        case .request(let r): return r.headers
        case .response(let r): return r.headers
        }
    }
}
