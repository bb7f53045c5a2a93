public import SIPMessage

/// Every way the authorization step refuses a request, mapped to its SIP answer in one
/// place: status code, reason phrase and the headers the answer carries (the challenges,
/// `Retry-After`). ``Authenticator`` decides, then turns the error into the response (or,
/// for a limit with ``LimitAction/drop``, into silence).
public enum AuthenticationError: SIPAnsweredError, Equatable {
    /// Credentials are needed, or were wrong, stale or replayed: a fresh challenge, one
    /// `Digest` value per algorithm (RFC 3261 22.4, RFC 8760 4). `401` with
    /// `WWW-Authenticate`, or as a proxy `407` with `Proxy-Authenticate` (RFC 3261 22.3).
    case challenge(asProxy: Bool, challenges: [String])
    /// One source sent more REGISTERs than its rate allows: `503` with `Retry-After`
    /// (whole seconds until the block ends).
    case tooManyRegisters(retryAfter: Int)
    /// A source, or a user name, failed to authenticate too often: `403` while it is blocked.
    case tooManyFailures
    /// A verified client certificate names another address of record: `403`.
    case certificateMismatch
    /// Certificate mode, and no usable client certificate: `403`.
    case certificateRequired
    /// The digest-uri does not name the Request-URI (RFC 7616 3.4.6): `400`.
    case digestURIMismatch
    /// Authenticated, but for another address of record than the one claimed: `403`
    /// (the From of a proxied request, or the To of a REGISTER).
    case notOwner(asProxy: Bool)

    /// The status code of the answer.
    public var statusCode: Int {
        switch self {
        case .challenge(let asProxy, _): return asProxy ? 407 : 401
        case .tooManyRegisters: return 503
        case .tooManyFailures, .certificateMismatch, .certificateRequired, .notOwner: return 403
        case .digestURIMismatch: return 400
        }
    }

    /// The reason phrase of the answer, exactly as sent.
    public var reasonPhrase: String {
        switch self {
        case .challenge: return SIPResponse.defaultReasonPhrase(statusCode)
        case .tooManyRegisters: return "Too Many Requests From This Address"
        case .tooManyFailures: return "Too Many Failed Authentications"
        case .certificateMismatch: return "Certificate Identity Does Not Match"
        case .certificateRequired: return "Client Certificate Required"
        case .digestURIMismatch: return "Digest URI Does Not Match Request-URI"
        case .notOwner(let asProxy):
            return asProxy ? "From Does Not Match The Credentials" : "Not Allowed To Register This Address"
        }
    }

    /// The headers the answer must carry: the challenges, or `Retry-After`.
    public var extraHeaders: [(SIPHeaderName, String)] {
        switch self {
        case .challenge(let asProxy, let challenges):
            let name: SIPHeaderName = asProxy ? .proxyAuthenticate : .wwwAuthenticate
            return challenges.map { (name, $0) }
        case .tooManyRegisters(let seconds): return [(.retryAfter, String(seconds))]
        case .tooManyFailures, .certificateMismatch, .certificateRequired, .digestURIMismatch, .notOwner: return []
        }
    }

    /// Whether the refusal comes from an abuse limit (then the configured
    /// ``AuthenticationConfiguration/limitAction`` may drop the request instead).
    public var isLimit: Bool {
        switch self {
        case .tooManyRegisters, .tooManyFailures: return true
        case .challenge, .certificateMismatch, .certificateRequired, .digestURIMismatch, .notOwner: return false
        }
    }
}
