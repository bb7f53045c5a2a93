import SIPMessage

/// One place a request for an address of record can be forwarded to (RFC 3261 16.5):
/// a registered contact and what the registrar knows about the connection it came on.
public struct ProxyTarget: Sendable, Hashable {
    /// The contact URI; it becomes the branch's Request-URI (RFC 3261 16.6 step 2).
    public var uri: SIPURI
    /// q in thousandths (0...1000) as the contact gave it; nil means 1.0 (RFC 3261 16.6 step 1).
    public var q: Int?
    /// RFC 5626 `+sip.instance`, unquoted, when the contact registered as an outbound flow.
    public var instance: String?
    /// RFC 5626 `reg-id`.
    public var regID: Int?
    /// The connection (flow) the contact registered on, for TCP and TLS.
    public var flowID: UInt64?
    /// The transport the branch leaves on. The location service fills in the transport the
    /// REGISTER arrived on; the server may replace it with the leg its hop selection picked.
    public var transport: SIPTransportProtocol
    /// The address the REGISTER came from (IPv6 without brackets) and its port: where a UDP
    /// contact behind NAT is reached.
    public var sourceHost: String
    /// The port of ``sourceHost``.
    public var sourcePort: Int
    /// RFC 3327 Path values stored with the binding; they become the branch's Route set.
    public var path: [String]

    /// Builds a target.
    public init(uri: SIPURI, q: Int? = nil, instance: String? = nil, regID: Int? = nil, flowID: UInt64? = nil,
                transport: SIPTransportProtocol, sourceHost: String, sourcePort: Int, path: [String] = []) {
        self.uri = uri
        self.q = q
        self.instance = instance
        self.regID = regID
        self.flowID = flowID
        self.transport = transport
        self.sourceHost = sourceHost
        self.sourcePort = sourcePort
        self.path = path
    }

    /// Whether the contact registered as an RFC 5626 outbound flow: when that flow is gone
    /// the branch fails with `430 Flow Failed` (RFC 5626 5.3) rather than `480`.
    public var isOutbound: Bool { instance != nil && regID != nil }

    /// q in thousandths with the default of RFC 3261 16.6 step 1 (1.0) applied.
    public var effectiveQ: Int { min(1000, max(0, q ?? 1000)) }
}

/// What the location service says about a Request-URI.
public enum ProxyLookupResult: Sendable, Hashable {
    /// Forward to these (scheme-filtered: a `sips:` request gets only contacts reachable over TLS).
    case targets([ProxyTarget])
    /// A served domain, but no such user or no binding: `404 Not Found`.
    case unknownUser
    /// A `sips:` request for a user whose contacts are all non-SIPS (RFC 5630 3.1.3):
    /// `480` with `Warning: 380 <host> "SIPS Not Allowed"`.
    case noSecureContacts
    /// Not a domain this server is responsible for: `403` unless the request is in a dialog
    /// we Record-Routed (no open relay).
    case notOurDomain
}

/// The narrow lookup interface the proxy needs from a registrar (RFC 3261 16.5: the
/// location service as the source of the target set). Implementations must be cheap and
/// must not block: the proxy calls it once per request outside a dialog.
public protocol ProxyLocationService: Sendable {
    /// The targets for a Request-URI, filtered by its scheme.
    func targets(for requestURI: SIPURI) -> ProxyLookupResult
}

extension ProxyLookupResult {
    /// The response a lookup without targets gets, built for `request` (RFC 3261 8.2.6);
    /// nil for `.targets` with at least one target. `.targets([])` answers `480`.
    /// `403` for `.notOurDomain`: the caller first checks for a dialog we Record-Routed.
    public func failureResponse(to request: SIPRequest, server: String? = nil) -> SIPResponse? {
        switch self {
        case .targets(let list):
            guard list.isEmpty else { return nil }
            return .answering(request, 480, server: server)
        case .unknownUser:
            return .answering(request, 404, server: server)
        case .noSecureContacts:
            // The text the registrar's redirect mode uses (RFC 5630 3.1.3, RFC 3261 20.43).
            let warning = SIPWarning(code: 380, agent: request.uri.hostName, text: "SIPS Not Allowed")
            return .answering(request, 480, headers: [(.warning, warning.description)], server: server)
        case .notOurDomain:
            return .answering(request, 403, server: server)
        }
    }
}
