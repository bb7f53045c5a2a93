/// The transport a message arrived on or is sent over.
public enum SIPTransportProtocol: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// UDP (RFC 3261 18): one message per datagram, unreliable.
    case udp = "UDP"
    /// TCP (RFC 3261 18): messages framed by Content-Length on a stream.
    case tcp = "TCP"
    /// TLS over TCP (RFC 3261 26.2): the transport `sips:` requires.
    case tls = "TLS"
    /// SIP over WebSocket (RFC 7118).
    case ws = "WS"
    /// SIP over secure WebSocket: TLS underneath (RFC 7118).
    case wss = "WSS"

    /// TCP, TLS and WebSocket deliver reliably; UDP does not (RFC 3261 17).
    public var isReliable: Bool { self != .udp }
    /// TLS and secure WebSocket are secure in the sense of RFC 3261 26.2 (SIPS; RFC 7118 5.2).
    public var isSecure: Bool { self == .tls || self == .wss }
    /// A WebSocket transport: only the connection a client opened reaches it (RFC 7118 5).
    public var isWebSocket: Bool { self == .ws || self == .wss }
    /// The Via spelling: `UDP`, `TCP`, `TLS`, `WS`, `WSS`.
    public var description: String { rawValue }

    /// Parses a Via transport or a `transport=` URI parameter (case-insensitive).
    public init?(token: some StringProtocol) {
        switch asciiLowercased(token) {
        case "udp": self = .udp
        case "tcp": self = .tcp
        case "tls": self = .tls
        case "ws": self = .ws
        case "wss": self = .wss
        default: return nil
        }
    }
}

/// What a verified TLS client certificate says about its holder.
public struct SIPTLSPeerIdentity: Sendable, Hashable {
    /// `sip:`/`sips:` URIs from subjectAltName.
    public var sipURIs: [String]
    /// DNS names from subjectAltName.
    public var dnsNames: [String]
    /// The subject common name.
    public var commonName: String?
    /// SHA-256 fingerprint of the DER certificate, hex with colons.
    public var fingerprintSHA256: String
    /// Whether the certificate chain verified against the configured roots.
    public var verified: Bool

    /// An identity; every parameter sets the property of the same name.
    public init(sipURIs: [String] = [], dnsNames: [String] = [], commonName: String? = nil, fingerprintSHA256: String = "",
                verified: Bool) {
        self.sipURIs = sipURIs
        self.dnsNames = dnsNames
        self.commonName = commonName
        self.fingerprintSHA256 = fingerprintSHA256
        self.verified = verified
    }
}

/// Where a request came from: the transport, the peer, the connection, and what a
/// TLS client certificate or an authorization step established.
public struct SIPSource: Sendable, Hashable {
    /// The transport the request arrived on.
    public var transport: SIPTransportProtocol
    /// The peer's address (IPv6 without brackets).
    public var remoteHost: String
    /// The peer's port.
    public var remotePort: Int
    /// The local address the request arrived at, when the leg knows it.
    public var localHost: String?
    /// The local port the request arrived at, when the leg knows it.
    public var localPort: Int?
    /// The connection (flow) a request arrived on; nil for UDP.
    public var flowID: UInt64?
    /// The verified TLS client certificate's identity, when there was one.
    public var tlsPeer: SIPTLSPeerIdentity?
    /// The identity an authorization receiver established (`user@domain`, or the
    /// certificate's `sip:`/`sips:` URI), if any.
    public var authenticatedIdentity: String?
    /// How `authenticatedIdentity` was established.
    public var authenticationMethod: SIPAuthenticationMethod?

    /// A source; `authenticationMethod` starts unset (an authorization step sets it).
    public init(transport: SIPTransportProtocol, remoteHost: String, remotePort: Int, localHost: String? = nil,
                localPort: Int? = nil, flowID: UInt64? = nil, tlsPeer: SIPTLSPeerIdentity? = nil,
                authenticatedIdentity: String? = nil) {
        self.transport = transport
        self.remoteHost = remoteHost
        self.remotePort = remotePort
        self.localHost = localHost
        self.localPort = localPort
        self.flowID = flowID
        self.tlsPeer = tlsPeer
        self.authenticatedIdentity = authenticatedIdentity
    }

    /// `host:port`, IPv6 in brackets.
    public var remoteAddress: String { Self.hostPort(remoteHost, remotePort) }

    /// Formats an address as `host:port`, with an IPv6 host in brackets.
    public static func hostPort(_ host: String, _ port: Int) -> String {
        host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

/// How a request's sender proved who it is.
public enum SIPAuthenticationMethod: String, Sendable, Hashable {
    /// HTTP digest (RFC 3261 22.4).
    case digest
    /// A verified TLS client certificate naming the address of record.
    case certificate
}

/// What a receiver in a dispatcher's chain decided about a request.
public enum SIPReceiveOutcome: Sendable {
    /// Answer the request with this response; the chain stops.
    case respond(SIPResponse)
    /// Not mine: offer the request, unchanged, to the next receiver.
    case pass
    /// Offer a rewritten request (and possibly an enriched source) to the next receiver.
    case forward(SIPRequest, SIPSource)
    /// Send nothing: the request is dropped (abuse control; a retransmission is dropped again).
    case discard

    /// The status code when the outcome is a response (Net::SIP's `receive` return value).
    public var statusCode: Int? {
        if case .respond(let r) = self { return r.statusCode }
        return nil
    }
}

/// A step of a dispatcher's receive chain: authorization, the registrar, a
/// redirect server... It never touches a socket; it returns an outcome.
public protocol SIPReceiver: Sendable {
    /// Decides about one request: answer it, pass it on (possibly rewritten), or drop it.
    func receive(_ request: SIPRequest, from source: SIPSource) async -> SIPReceiveOutcome

    /// The methods this receiver handles, for the `Allow` header of the dispatcher's own
    /// answers (`405`, and `200` to `OPTIONS`; RFC 3261 20.5). Default: none (a step such as
    /// authorization handles no method itself).
    var allowedMethods: [SIPMethod] { get }
}

extension SIPReceiver {
    /// No method of its own.
    public var allowedMethods: [SIPMethod] { [] }
}

/// A scheduled piece of work that can be cancelled.
public protocol SIPScheduledTimer: Sendable {
    /// Cancels the work if it has not run yet; harmless afterwards.
    func cancel()
}

/// Timers offered by a dispatcher to its receivers (the registrar schedules
/// its next expiry with it).
public protocol SIPTimerScheduler: Sendable {
    /// Runs `body` once after `delay`.
    @discardableResult
    func schedule(after delay: Duration, _ body: @escaping @Sendable () -> Void) -> any SIPScheduledTimer
}
