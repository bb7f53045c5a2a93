import SIPMessage

/// Where a validated request goes (RFC 3261 16.5), with the no-open-relay rule of issue 13.
public enum ProxyRouteDecision: Sendable, Hashable {
    /// Out of a dialog, for a domain we serve: ask the ``ProxyLocationService`` for targets.
    case lookUp(SIPURI)
    /// In a dialog we Record-Routed (one of our Route values carried a valid flow token):
    /// forward to the Request-URI as the only target (16.5, 16.12), over `flow` when the
    /// token names a flow other than the one the request came on (RFC 5626 5.3).
    case forward(flow: FlowToken?)
    /// Addressed to this element itself (the Request-URI names us and no Route is left):
    /// the caller answers it as a user agent server (e.g. OPTIONS).
    case local
    /// Not forwarded: `403` for a domain we do not serve outside a dialog we Record-Routed.
    case reject(SIPResponse)
}

extension ValidatedRequest {
    /// Decides where this request goes. `codec` is nil when the server puts no flow
    /// tokens in its Record-Routes; then only served domains are forwarded.
    public func route(arrivedOn source: SIPSource, identity: ProxyIdentity, codec: FlowTokenCodec?,
                      server: String? = nil) -> ProxyRouteDecision {
        if let codec {
            // Each token is verified once (a MAC each): they decide both questions.
            let tokens = flowTokens(codec: codec)
            if !tokens.isEmpty { return .forward(flow: Self.flow(of: tokens, arrivedOn: source)) }
        }
        let remainingRoutes = request.headers.contains(.route)
        // Addressed to this element: no user part (a user at our address is looked up, 16.5).
        if !remainingRoutes, request.uri.user == nil, identity.isUs(request.uri) { return .local }
        if request.uri.isSIP, identity.servesDomain(request.uri.hostName), !remainingRoutes {
            return .lookUp(request.uri)
        }
        return .reject(.answering(request, 403, reason: "Relaying Forbidden", server: server))
    }

    /// The single target of an in-dialog request: its Request-URI, reached over `flow` when
    /// a flow token named one (the server turns it into the hop), else over the transport
    /// the URI asks for (`sips:` only over TLS).
    public func dialogTarget(flow: FlowToken?) -> ProxyTarget {
        let uri = request.uri
        let transport = flow?.transport
            ?? (uri.isSIPS ? .tls : uri.transport.flatMap { SIPTransportProtocol(token: $0) } ?? .udp)
        return ProxyTarget(uri: uri, flowID: flow?.flowID, transport: transport, sourceHost: flow?.host ?? uri.hostName,
                           sourcePort: flow?.port ?? uri.port ?? (transport == .tls ? 5061 : 5060))
    }
}
