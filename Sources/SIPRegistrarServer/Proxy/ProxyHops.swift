import SIPMessage
import SIPProxy
import SIPTransport

/// Which hop each target is reached over (RFC 3261 16.6 step 6, RFC 5626 5.3, RFC 3327,
/// RFC 5630), our Via leg for it and the Record-Route plan (RFC 5658).
extension ProxyHost {
    /// Where a target came from, which decides how its hop is found.
    enum TargetKind {
        /// A binding from the location service.
        case location
        /// An in-dialog request whose Route carried our flow token: the token's flow or address.
        case flowToken
        /// An in-dialog request without a token for another flow: its Request-URI's hop.
        case requestURI
    }

    /// The branch target for one target: the hop (written into the target's transport,
    /// address and flow), our Via leg for it and the Record-Route plan. Nil when the target
    /// cannot be reached without breaking SIPS or with the legs we have.
    func branchTarget(_ t: ProxyTarget, kind: TargetKind, for request: ValidatedRequest, from source: SIPSource,
                      secure: Bool) -> ProxyBranchTarget? {
        var target = t
        let mustBeTLS = secure || t.uri.isSIPS
        if t.flowID == RegistrarLocationService.goneFlow {
            // Held by a node that is gone: fails as a closed flow (430/480).
        } else if kind == .flowToken {
            // The flow (or UDP address) the token names; SIPS still needs it to be TLS.
            if mustBeTLS, !t.transport.isSecure { return nil }
        } else if let first = t.path.first, let route = NameAddress.parse(first) {
            // RFC 3327: the edge proxy on the Path holds the flow; the first Path URI is the next hop.
            guard let hop = uriHop(route.uri, mustBeTLS: mustBeTLS) else { return nil }
            target.flowID = nil
            target.transport = hop.transport
            target.sourceHost = hop.host
            target.sourcePort = hop.port
        } else if kind == .location, let flow = t.flowID, t.transport.isReliable, !mustBeTLS || t.transport.isSecure {
            // The connection it registered on, open or not: a closed one fails the branch (430/480).
            target.flowID = flow
        } else if kind == .location, t.transport == .udp, t.flowID == nil, !mustBeTLS {
            // NAT: the address and port the REGISTER came from.
            target.flowID = nil
        } else {
            guard let hop = uriHop(t.uri, mustBeTLS: mustBeTLS) else { return nil }
            target.flowID = dispatcher.openFlow(to: hop.transport, host: hop.host, port: hop.port)
            target.transport = hop.transport
            target.sourceHost = hop.host
            target.sourcePort = hop.port
        }
        guard dispatcher.legTransports.contains(target.transport),
              let out = dispatcher.advertisedLeg(target.transport, peer: target.sourceHost),
              let inbound = dispatcher.advertisedLeg(source.transport, peer: source.remoteHost,
                                                     local: source.transport.isReliable ? source.localHost : nil) else { return nil }
        let outLeg = ProxyLeg(transport: target.transport, host: out.host, port: out.port)
        let inLeg = ProxyLeg(transport: source.transport, host: inbound.host, port: inbound.port)
        var plan: RecordRoutePlan?
        let method = request.request.method
        let inDialog = ((try? request.request.headers.tag(.to)) ?? nil) != nil
        if method != .register, !inDialog {
            // Both directions of the dialog find their peer's flow: two entries, each with a token
            // (RFC 5658 double Record-Route, RFC 5626 5.3 flow tokens), even on one transport. A
            // request inside a dialog cannot change its route set (RFC 3261 12.2): none there.
            plan = RecordRoutePlan.signed(inbound: inLeg, caller: FlowToken(source: source), outbound: outLeg,
                                          callee: FlowToken(flowID: target.flowID, transport: target.transport,
                                                            host: target.sourceHost, port: target.sourcePort),
                                          codec: codec, forceDouble: true)
        }
        return ProxyBranchTarget(target: target, via: outLeg, recordRoute: plan)
    }

    /// The hop of a URI by leg selection: `sips:` (or a TLS requirement) only over TLS.
    func uriHop(_ uri: SIPURI, mustBeTLS: Bool) -> SendTarget? {
        var u = uri
        if mustBeTLS, !u.isSIPS {
            guard u.transport == nil || u.transport == "tls" || u.transport == "wss" else { return nil }
            if u.transport == nil { u.parameters.set("transport", "tls") }
        }
        guard let t = try? LegSelection.select(u, available: dispatcher.legTransports) else { return nil }
        if mustBeTLS, !t.transport.isSecure { return nil }
        return t
    }

    /// The hop a branch target's fields name.
    static func hop(_ target: ProxyTarget) -> SIPHop {
        if let flow = target.flowID { return .flow(flow) }
        if target.transport == .udp { return .udp(host: target.sourceHost, port: target.sourcePort) }
        return .stream(SendTarget(transport: target.transport, host: target.sourceHost, port: target.sourcePort))
    }
}
