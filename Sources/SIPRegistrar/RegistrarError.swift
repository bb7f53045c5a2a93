public import SIPMessage

/// Every way a REGISTER can fail, mapped to its SIP answer in one place
/// (RFC 3261 10.3; status, reason phrase and extra headers).
public enum RegistrarError: SIPAnsweredError, Equatable {
    /// Step 1/3: the Request-URI or the To domain is not served (when configured to answer).
    case domainNotServed
    /// Step 2: `Require` lists option tags we do not support.
    case unsupportedExtensions([String])
    /// Step 3: the To URI is not a SIP or SIPS URI.
    case notSIPAOR
    /// A header the registrar needs is malformed.
    case malformedHeader(SIPParseError)
    /// Step 6: `*` with an Expires other than 0 or with other contacts.
    case invalidWildcard
    /// Step 7: a non-zero expiry below the minimum.
    case intervalTooBrief(minExpires: Int)
    /// Step 7: same Call-ID and a CSeq not higher than stored.
    case invalidCSeq
    /// RFC 5630 / 3261 26.2: a `sips:` Contact under a `sip:` Request-URI, or `sip:` and `sips:` contacts mixed.
    case mixedSchemes
    /// RFC 3261 26.2: `sips:` over a transport other than TLS.
    case sipsRequiresTLS
    /// More contacts than the per-AOR limit.
    case tooManyContacts(limit: Int)
    /// The store could not make the change durable.
    case storeUnavailable(retryAfter: Int)
    /// The location service holds as many bindings (or addresses of record) as it may.
    case locationServiceFull(retryAfter: Int)

    /// The status code of the answer.
    public var statusCode: Int {
        switch self {
        case .domainNotServed, .notSIPAOR: return 404
        case .unsupportedExtensions: return 420
        case .malformedHeader, .invalidWildcard, .invalidCSeq, .mixedSchemes: return 400
        case .intervalTooBrief: return 423
        case .sipsRequiresTLS, .tooManyContacts: return 403
        case .storeUnavailable, .locationServiceFull: return 503
        }
    }

    /// The reason phrase of the answer, exactly as sent.
    public var reasonPhrase: String {
        switch self {
        case .domainNotServed: return "Domain Not Served"
        case .notSIPAOR: return "Not Found"
        case .unsupportedExtensions: return "Bad Extension"
        case .malformedHeader(let e): return e.reasonPhrase
        case .invalidWildcard: return "Invalid Wildcard Contact"
        case .intervalTooBrief: return "Interval Too Brief"
        case .invalidCSeq: return "Invalid CSeq"
        case .mixedSchemes: return "SIPS Contact Needs SIPS Request-URI And Only SIPS Contacts"
        case .sipsRequiresTLS: return "SIPS Requires TLS"
        case .tooManyContacts: return "Too Many Registrations"
        case .storeUnavailable: return "Location Store Unavailable"
        case .locationServiceFull: return "Location Service Full"
        }
    }

    /// Headers the answer must carry (`Unsupported`, `Min-Expires`, `Retry-After`).
    public var extraHeaders: [(SIPHeaderName, String)] {
        switch self {
        case .unsupportedExtensions(let tags): return [(.unsupported, tags.joined(separator: ", "))]
        case .intervalTooBrief(let min): return [(.minExpires, String(min))]
        case .storeUnavailable(let s), .locationServiceFull(let s): return [(.retryAfter, String(s))]
        default: return []
        }
    }
}
