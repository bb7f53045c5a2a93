import SIPMessage

/// Who "we" are: the names and addresses that appear in our Via sent-by, our Record-Route
/// URIs and in Route headers and Request-URIs addressed to this proxy (RFC 3261 16.4),
/// and which domains we serve (RFC 3261 16.5: only requests for those go to the location service).
public struct ProxyIdentity: Sendable {
    /// Our host names and addresses, lowercased, IPv6 without brackets.
    public var hosts: Set<String>
    /// Our listening ports; empty means any port on our hosts is us.
    public var ports: Set<Int>
    /// Whether a domain (lowercased host) is one we are responsible for.
    public var servesDomain: @Sendable (String) -> Bool

    /// Builds an identity; host names are lowercased and IPv6 brackets removed.
    public init(hosts: some Sequence<String>, ports: Set<Int> = [], servesDomain: @escaping @Sendable (String) -> Bool) {
        self.hosts = Set(hosts.map { Self.normalize($0) })
        self.ports = ports
        self.servesDomain = servesDomain
    }

    /// Whether `host:port` is one of ours. An absent port is the default port of the scheme
    /// or transport (5060, 5061 for TLS), RFC 3261 19.1.2.
    public func isUs(host: String, port: Int?, secure: Bool) -> Bool {
        guard hosts.contains(Self.normalize(host)) else { return false }
        guard !ports.isEmpty else { return true }
        return ports.contains(port ?? (secure ? 5061 : 5060))
    }

    /// Whether a URI names this proxy (a Route value or a Request-URI we put in a Record-Route).
    public func isUs(_ uri: SIPURI) -> Bool {
        guard uri.isSIP else { return false }
        let host = uri.parameters.value("maddr") ?? uri.host
        return isUs(host: host, port: uri.port, secure: uri.isSIPS || uri.transport == "tls" || uri.transport == "wss")
    }

    /// Whether a Via's sent-by is ours (RFC 3261 16.3 step 4).
    public func isUs(_ via: SIPVia) -> Bool {
        isUs(host: via.host, port: via.port, secure: via.transport == "TLS" || via.transport == "WSS")
    }

    static func normalize(_ host: String) -> String {
        var h = host
        if h.hasPrefix("["), h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        return h.lowercased()
    }
}
