/// A failure answered with exactly one SIP response: its status code, its reason phrase
/// and the headers that answer must carry (`Retry-After`, `WWW-Authenticate`,
/// `Min-Expires`...). Each layer's typed error conforms, so one helper
/// (`SIPResponse.answering(request, error, server:)`) turns any of them into the response.
public protocol SIPAnsweredError: Error, Sendable {
    /// The status code of the answer.
    var statusCode: Int { get }
    /// The reason phrase of the answer, exactly as sent.
    var reasonPhrase: String { get }
    /// Header fields the answer carries besides the ones copied from the request, in order.
    var extraHeaders: [(SIPHeaderName, String)] { get }
}

extension SIPAnsweredError {
    /// No extra header fields.
    public var extraHeaders: [(SIPHeaderName, String)] { [] }
}

extension SIPParseError: SIPAnsweredError {}

extension SIPResponse {
    /// The answer "`statusCode` to this request", as an element that ends the request's
    /// transaction writes it: Via, From, To, Call-ID and CSeq copied (RFC 3261 8.2.6), a
    /// fresh To tag when the request's To has none and the code is above 100 (8.2.6.2),
    /// then `Server` when `server` is given, then `headers` in order.
    ///
    /// - Parameters:
    ///   - request: the request answered.
    ///   - statusCode: the status code.
    ///   - reason: the reason phrase; nil for the standard one of `statusCode`.
    ///   - headers: header fields to add.
    ///   - server: the value of a `Server` header, if any.
    /// - Returns: the response, ready to send back the way the request came.
    public static func answering(_ request: SIPRequest, _ statusCode: Int, reason: String? = nil,
                                 headers: [(SIPHeaderName, String)] = [], server: String?) -> SIPResponse {
        var response = SIPResponse(to: request, statusCode: statusCode, reasonPhrase: reason, toTag: randomTag(),
                                   server: server)
        for (name, value) in headers { response.headers.add(name, value) }
        return response
    }

    /// The answer to `request` that `error` calls for: its status code, reason phrase and
    /// extra headers, with a fresh To tag (see ``answering(_:_:reason:headers:server:)``).
    public static func answering(_ request: SIPRequest, _ error: some SIPAnsweredError, server: String?) -> SIPResponse {
        answering(request, error.statusCode, reason: error.reasonPhrase, headers: error.extraHeaders, server: server)
    }

    /// Like ``answering(_:_:reason:headers:server:)`` for a request known only by the headers
    /// read so far (a request that failed to parse); nil when Via, From, To, Call-ID or CSeq
    /// is missing, since such an answer could not be matched or routed.
    public static func answering(headers: SIPHeaders, _ statusCode: Int, reason: String? = nil,
                                 server: String?) -> SIPResponse? {
        SIPResponse(answering: headers, statusCode: statusCode, reasonPhrase: reason, toTag: randomTag(), server: server)
    }
}
