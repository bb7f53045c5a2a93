public import SIPMessage

/// Where and how a request to a URI is sent (RFC 3261 18.1.1, 19.1.2, 26.2; RFC 3263's
/// defaults without DNS lookups).
public struct SendTarget: Sendable, Hashable, CustomStringConvertible {
    /// The leg's transport (`sips:` targets: TLS or WSS only).
    public var transport: SIPTransportProtocol
    /// Host name or IP address (IPv6 without brackets).
    public var host: String
    /// The port: the URI's, else the transport's default (5060, 5061 for TLS; RFC 3261 19.1.2).
    public var port: Int

    /// A target as given; the host without brackets.
    public init(transport: SIPTransportProtocol, host: String, port: Int) {
        self.transport = transport
        self.host = host
        self.port = port
    }

    /// `transport host:port`, an IPv6 host in brackets.
    public var description: String {
        host.contains(":") ? "\(transport) [\(host)]:\(port)" : "\(transport) \(host):\(port)"
    }
}

/// Why a request cannot be sent to a URI.
public enum LegSelectionError: Error, Sendable, Hashable, CustomStringConvertible {
    case notSIPURI(String)
    /// `sips:` needs TLS end to end, and there is no TLS leg: never downgraded.
    case sipsNeedsTLSLeg
    /// `sips:` with `transport=udp` is a contradiction.
    case sipsOverUDP
    /// `sips:` with `transport=ws`: plain WebSocket is not secure (RFC 7118 5.2).
    case sipsOverInsecureWebSocket
    case unsupportedTransport(String)
    case noLeg(SIPTransportProtocol)

    /// One sentence naming the URI's fault.
    public var description: String {
        switch self {
        case .notSIPURI(let s): return "cannot send to \(s): not a sip: or sips: URI"
        case .sipsNeedsTLSLeg: return "a sips: target needs a TLS leg, and none is configured (no downgrade)"
        case .sipsOverUDP: return "a sips: URI cannot use transport=udp"
        case .sipsOverInsecureWebSocket: return "a sips: URI cannot use transport=ws (not secure; use wss)"
        case .unsupportedTransport(let t): return "transport=\(t) is not supported"
        case .noLeg(let t): return "no \(t) leg is configured"
        }
    }
}

/// Which leg a request to a URI leaves over: by scheme first (`sips:` only over TLS, never
/// downgraded, RFC 5630), then `transport=`, then size (RFC 3261 18.1.1).
public enum LegSelection {
    /// Above this size a request goes over TCP rather than UDP (RFC 3261 18.1.1).
    public static let udpSizeThreshold = 1_300

    /// Picks the transport, host and port for `uri`: `sips:` → TLS only; a `transport`
    /// parameter → that protocol; otherwise UDP, or TCP for messages over 1,300 bytes
    /// (falling back to whichever of UDP and TCP exists); `maddr` overrides the host;
    /// default ports 5060, 5061 for TLS.
    public static func select(_ uri: SIPURI, available: Set<SIPTransportProtocol>,
                              messageSize: Int = 0) throws(LegSelectionError) -> SendTarget {
        guard uri.isSIP else { throw .notSIPURI(uri.description) }
        let requested = uri.transport
        var transport: SIPTransportProtocol
        if uri.isSIPS {
            if requested == "udp" { throw .sipsOverUDP }
            // RFC 7118 5.2: secure WebSocket counts as secure; plain WebSocket never carries sips:.
            if requested == "ws" { throw .sipsOverInsecureWebSocket }
            if requested == "wss" {
                guard available.contains(.wss) else { throw .noLeg(.wss) }
                transport = .wss
            } else {
                if let requested, requested != "tls", requested != "tcp" { throw .unsupportedTransport(requested) }
                guard available.contains(.tls) else { throw .sipsNeedsTLSLeg }
                transport = .tls
            }
        } else if let requested {
            guard let t = SIPTransportProtocol(token: requested) else { throw .unsupportedTransport(requested) }
            transport = t
        } else if messageSize > udpSizeThreshold, available.contains(.tcp) {
            transport = .tcp
        } else if available.contains(.udp) {
            transport = .udp
        } else if available.contains(.tcp) {
            transport = .tcp
        } else {
            throw .noLeg(.udp)
        }
        guard available.contains(transport) else { throw .noLeg(transport) }
        var host = uri.hostName
        if let maddr = uri.parameters.value("maddr"), !maddr.isEmpty {
            host = maddr.hasPrefix("[") && maddr.hasSuffix("]") ? String(maddr.dropFirst().dropLast()) : maddr
        }
        let port = uri.port ?? (transport.isSecure ? 5061 : 5060)
        return SendTarget(transport: transport, host: host, port: port)
    }
}
