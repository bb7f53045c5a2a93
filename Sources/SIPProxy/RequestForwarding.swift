import SIPMessage

/// Our side of a hop: the transport and the address the peer on that side reaches us at
/// (the Via sent-by and the Record-Route host for that side).
public struct ProxyLeg: Sendable, Hashable {
    /// The transport of the hop.
    public var transport: SIPTransportProtocol
    /// Our address on it (IPv6 without brackets).
    public var host: String
    /// Our port on it.
    public var port: Int

    /// Builds a leg.
    public init(transport: SIPTransportProtocol, host: String, port: Int) {
        self.transport = transport
        self.host = host
        self.port = port
    }

    var bracketedHost: String { host.contains(":") ? "[\(host)]" : host }
}

/// How we Record-Route one branch (RFC 3261 16.6 step 4, RFC 5658): the leg the request
/// came in on and the one it leaves on, each with the flow token (the user part) that
/// names the peer's flow on that side.
public struct RecordRoutePlan: Sendable, Hashable {
    /// The leg towards the caller.
    public var inbound: ProxyLeg
    /// The flow token for the caller's side (from ``FlowTokenCodec/encode(_:)``).
    public var inboundToken: String?
    /// The leg towards the target.
    public var outbound: ProxyLeg
    /// The flow token for the target's side.
    public var outboundToken: String?
    /// Insert two entries even when both legs are the same (e.g. so that each direction
    /// of a dialog between two user agents behind NAT finds the other one's flow).
    public var forceDouble: Bool

    /// Builds a plan.
    public init(inbound: ProxyLeg, inboundToken: String? = nil, outbound: ProxyLeg, outboundToken: String? = nil,
                forceDouble: Bool = false) {
        self.inbound = inbound
        self.inboundToken = inboundToken
        self.outbound = outbound
        self.outboundToken = outboundToken
        self.forceDouble = forceDouble
    }

    /// A plan whose tokens are signed with `codec`: `caller` is the flow the request came
    /// on, `callee` the flow (or UDP address) the branch leaves on. Nil when a token cannot
    /// be encoded (see ``FlowTokenCodec/encode(_:)``).
    public static func signed(inbound: ProxyLeg, caller: FlowToken, outbound: ProxyLeg, callee: FlowToken,
                              codec: FlowTokenCodec, forceDouble: Bool = false) -> RecordRoutePlan? {
        guard let a = codec.encode(caller), let b = codec.encode(callee) else { return nil }
        return RecordRoutePlan(inbound: inbound, inboundToken: a, outbound: outbound, outboundToken: b,
                               forceDouble: forceDouble)
    }

    /// Two entries when the request enters and leaves on different legs (RFC 5658 4).
    public var isDouble: Bool { forceDouble || inbound != outbound }

    /// The Record-Route values to insert, top first. The top one faces the target (the
    /// callee's route set starts with it); the second faces the caller. A single entry
    /// carries the target's token: in-dialog requests that arrive on that very flow are the
    /// target's own and are routed by their Request-URI.
    ///
    /// `sips` is true when the Request-URI or the top Route is a SIPS URI: then every entry
    /// is a SIPS URI (16.6 step 4). Otherwise a TLS side gets `transport=tls` and a TCP side
    /// `transport=tcp`. `lr` always (we are a loose router, 16.4).
    public func recordRouteValues(sips: Bool) -> [String] {
        let top = Self.uri(leg: outbound, token: outboundToken, sips: sips)
        guard isDouble else { return ["<\(top)>"] }
        return ["<\(top)>", "<\(Self.uri(leg: inbound, token: inboundToken, sips: sips))>"]
    }

    /// One Record-Route URI.
    public static func uri(leg: ProxyLeg, token: String?, sips: Bool) -> SIPURI {
        var params = SIPParameters()
        if !sips {
            switch leg.transport {
            case .tls: params.set("transport", "tls")
            case .ws: params.set("transport", "ws")
            case .wss: params.set("transport", "wss")
            case .tcp: params.set("transport", "tcp")
            case .udp: break
            }
        }
        params.set("lr", nil)
        return SIPURI(scheme: sips ? "sips" : "sip", user: token, host: leg.bracketedHost, port: leg.port, parameters: params)
    }
}

/// Builds the request of one branch (RFC 3261 16.6) and processes responses (16.7 step 3).
public enum ProxyForwarding {
    /// The copy sent to `target` on branch `index` (16.6 steps 1-9):
    /// Request-URI = the target (step 2); Max-Forwards was handled by the validator (step 3);
    /// Record-Route inserted before existing values when `recordRoute` is given (step 4);
    /// the target's Path values pushed as Route (RFC 3327 5.3, step 5); a strict next hop
    /// handled (step 6); our Via on top with the computed branch (step 8). The body is
    /// never touched; the serializer writes Content-Length (step 9).
    public static func branchRequest(_ validated: ValidatedRequest, target: ProxyTarget, index: Int, via: ProxyLeg,
                                     recordRoute: RecordRoutePlan?) -> SIPRequest {
        var request = validated.request
        request.uri = target.uri.withoutHeaders
        if let recordRoute {
            let sips = request.uri.isSIPS || (target.path.first.flatMap { NameAddress.parse($0)?.uri.isSIPS } ?? false)
                || (RouteList.first(of: request.headers)?.uri.isSIPS ?? false) || validated.receivedURI.isSIPS
            var fields = request.headers.fields
            let at = fields.firstIndex { $0.name == .recordRoute } ?? fields.endIndex
            let values = recordRoute.recordRouteValues(sips: sips).map { SIPHeaderField(name: .recordRoute, value: $0) }
            fields.insert(contentsOf: values, at: at)
            request.headers = SIPHeaders(fields)
        }
        if !target.path.isEmpty {
            var routes = RouteList(request.headers)
            let path = target.path.compactMap { text in NameAddress.parse(text).map { RouteList.Value($0, text: Substring(text)) } }
            routes.values.insert(contentsOf: path, at: 0)
            routes.write(to: &request.headers)
        }
        // Step 6: a strict router as next hop gets the Request-URI as its last Route.
        if let first = RouteList.first(of: request.headers), !first.uri.parameters.contains("lr") {
            var routes = RouteList(request.headers)
            routes.values.removeFirst()
            routes.values.append(RouteList.Value(NameAddress(uri: request.uri)))
            request.uri = first.uri
            routes.write(to: &request.headers)
        }
        let value = viaValue(via, branch: validated.branchKey.branch(index: index))
        request.headers.prepend(.via, value)
        return request
    }

    /// Our Via value for a leg and a branch.
    public static func viaValue(_ leg: ProxyLeg, branch: String) -> String {
        SIPVia(transport: leg.transport.rawValue, host: leg.bracketedHost, port: leg.port,
               parameters: SIPParameters([.init(name: "branch", value: branch)])).description
    }

    /// RFC 3261 16.7 step 3: removes our top Via. Nil when the top Via is not ours (the
    /// response does not belong to us).
    public static func stripOwnVia(_ response: SIPResponse, identity: ProxyIdentity) -> OwnResponse? {
        guard let top = (try? response.headers.topVia) ?? nil else { return nil }
        return stripOwnVia(response, top: top, identity: identity)
    }

    /// The same, with the response's top Via already parsed.
    public static func stripOwnVia(_ response: SIPResponse, top: SIPVia, identity: ProxyIdentity) -> OwnResponse? {
        guard identity.isUs(top), let branch = top.branch,
              let (key, index) = ProxyBranchKey.parse(branch),
              let at = response.headers.firstIndex(where: { $0.name == .via }) else { return nil }
        var out = response
        var list = SIPHeaders.splitList(out.headers[at].value)
        list.removeFirst()
        if list.isEmpty {
            out.headers.remove(at: at)
        } else {
            out.headers.replaceValue(at: at, with: list.joined(separator: ", "))
        }
        return OwnResponse(response: out, branchKey: key, branchIndex: index, isForUs: !out.headers.contains(.via))
    }
}

/// A response that came back through our Via (RFC 3261 16.7 step 3).
public struct OwnResponse: Sendable, Hashable {
    /// The response without our Via.
    public var response: SIPResponse
    /// The hashes of the branch it answers, to find the response context.
    public var branchKey: ProxyBranchKey
    /// The branch number within that context.
    public var branchIndex: Int
    /// No Via is left: the response was meant for this element and is never forwarded
    /// (a response to a CANCEL or ACK we made ourselves, 16.7 step 3).
    public var isForUs: Bool
}

extension SIPURI {
    /// The URI without `?headers` (a Request-URI cannot carry them, RFC 3261 19.1.5).
    var withoutHeaders: SIPURI {
        var u = self
        u.headers = []
        return u
    }
}

extension ValidatedRequest {
    /// The flow an in-dialog request must leave on, from the flow tokens in the Route values
    /// we removed (RFC 5626 5.3): the last valid token that does not name the flow the request
    /// arrived on. Nil when there is none: route by the Request-URI.
    public func flowToken(arrivedOn source: SIPSource, codec: FlowTokenCodec) -> FlowToken? {
        Self.flow(of: flowTokens(codec: codec), arrivedOn: source)
    }

    /// The valid flow tokens in the Route values we removed, top first.
    func flowTokens(codec: FlowTokenCodec) -> [FlowToken] {
        removedRoutes.compactMap { uri in uri.user.flatMap { codec.decode($0) } }
    }

    /// The last of `tokens` that does not name the flow the request arrived on.
    static func flow(of tokens: [FlowToken], arrivedOn source: SIPSource) -> FlowToken? {
        tokens.last { !$0.names(source) }
    }
}
