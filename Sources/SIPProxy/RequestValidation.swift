import SIPMessage

/// A request that passed the checks of RFC 3261 16.3 and the route preprocessing of 16.4,
/// ready for target determination (16.5) and forwarding (16.6).
public struct ValidatedRequest: Sendable, Hashable {
    /// The request with our own Route values removed, a strict router's rewrite undone, and
    /// Max-Forwards already decremented, or set to the default when absent (16.6 step 3,
    /// done once here for every branch).
    public var request: SIPRequest
    /// The Request-URI as it arrived (16.6 step 8 hashes the URI before translation).
    public var receivedURI: SIPURI
    /// The branch hashes of this request (16.6 step 8).
    public var branchKey: ProxyBranchKey
    /// The Route values naming us that were removed, top first: our Record-Route URIs
    /// coming back in a dialog, whose user parts carry flow tokens. A strict router's
    /// Request-URI that named us is the first element when ``wasStrictRouted``.
    public var removedRoutes: [SIPURI]
    /// Whether the previous hop was a strict router (RFC 3261 16.4: the Request-URI was a
    /// value we put in a Record-Route, and the last Route value became the Request-URI).
    public var wasStrictRouted: Bool
}

/// The result of ``ProxyRequestValidator/validate(_:)``.
public enum ProxyValidation: Sendable, Hashable {
    /// Go on with target determination.
    case forward(ValidatedRequest)
    /// Answer the request with this response and forward nothing.
    case reject(SIPResponse)
}

/// Request validation (RFC 3261 16.3) and route information preprocessing (16.4).
///
/// Proxy-Authorization (16.3 step 6) is the caller's business (its authenticator runs
/// before). A `483` to an OPTIONS addressed to us may be replaced by the caller with a
/// `200` (16.3 step 3 allows the proxy to answer it as a UAS).
public struct ProxyRequestValidator: Sendable {
    /// Who we are.
    public var identity: ProxyIdentity
    /// Option tags this proxy supports in Proxy-Require (16.3 step 5); none by default.
    public var supportedProxyExtensions: Set<String>
    /// Max-Forwards for a request without one (16.6 step 3: SHOULD be 70).
    public var defaultMaxForwards: Int
    /// The Server header of the responses it generates.
    public var server: String?

    /// Builds a validator.
    public init(identity: ProxyIdentity, supportedProxyExtensions: Set<String> = [], defaultMaxForwards: Int = 70,
                server: String? = nil) {
        self.identity = identity
        self.supportedProxyExtensions = supportedProxyExtensions
        self.defaultMaxForwards = defaultMaxForwards
        self.server = server
    }

    /// Runs the checks in the order of RFC 3261 16.3, then 16.4. `branchKey` is the request's
    /// key when the caller computed it already (it is not computed twice).
    public func validate(_ request: SIPRequest, branchKey: ProxyBranchKey? = nil) -> ProxyValidation {
        func reject(_ code: Int, _ reason: String? = nil) -> ProxyValidation {
            .reject(.answering(request, code, reason: reason, server: server))
        }
        // Step 1: reasonable syntax of what the proxy reads.
        let key: ProxyBranchKey
        let vias: [SIPVia]
        let maxForwards: Int?
        let routes: RouteList
        do throws(SIPParseError) {
            if let branchKey { key = branchKey } else { key = try ProxyBranchKey(request: request) }
            vias = try request.headers.via
            maxForwards = try request.headers.maxForwards
            routes = try RouteList(parsing: request.headers)
        } catch {
            return .reject(.answering(request, error, server: server))
        }
        // Step 2: URI scheme. Only sip and sips are routed by this proxy.
        guard request.uri.isSIP else { return reject(416) }
        // Step 3: Max-Forwards.
        if let maxForwards, maxForwards == 0 { return reject(483) }
        // Step 4: loop detection. One of our Vias with the loop hash of this very request
        // means it came back unchanged (16.6 step 8 makes the branch depend on the routing inputs).
        for via in vias where identity.isUs(via) {
            if let branch = via.branch, let (theirs, _) = ProxyBranchKey.parse(branch), theirs.loop == key.loop {
                return reject(482)
            }
        }
        // Step 5: Proxy-Require.
        let unsupported = request.headers.proxyRequire.filter { !supportedProxyExtensions.contains($0.lowercased()) }
        if !unsupported.isEmpty {
            guard case .reject(var r) = reject(420) else { return reject(420) }
            r.headers.add(.unsupported, unsupported.joined(separator: ", "))
            return .reject(r)
        }

        var out = request
        out.headers.set(.maxForwards, String(maxForwards.map { $0 - 1 } ?? defaultMaxForwards))
        let (removed, strict) = Self.preprocessRoutes(&out, routes: routes, identity: identity)
        return .forward(ValidatedRequest(request: out, receivedURI: request.uri, branchKey: key, removedRoutes: removed,
                                         wasStrictRouted: strict))
    }

    /// RFC 3261 16.4. A Request-URI that is one of our Record-Route URIs (it names us and
    /// has `lr`, as all ours do) came from a strict router: the last Route value becomes the
    /// Request-URI. Then every top Route value naming us is removed: one, or two when we
    /// double record-routed (RFC 5658 3.3).
    static func preprocessRoutes(_ request: inout SIPRequest, routes: RouteList,
                                 identity: ProxyIdentity) -> ([SIPURI], Bool) {
        var routes = routes
        var removed: [SIPURI] = []
        var strict = false
        if identity.isUs(request.uri), request.uri.parameters.contains("lr"), let last = routes.values.last {
            removed.append(request.uri)
            request.uri = last.address.uri
            routes.values.removeLast()
            strict = true
        }
        while let first = routes.values.first, identity.isUs(first.address.uri) {
            removed.append(first.address.uri)
            routes.values.removeFirst()
        }
        if removed.isEmpty { return ([], false) }
        routes.write(to: &request.headers)
        return (removed, strict)
    }
}

/// The Route values of a message, one element per value, written back as one field each.
/// A value read from the message keeps its text and is written back as it came (16.4 and
/// 16.6 only remove or add values; the others pass unchanged and are not serialized again).
struct RouteList {
    struct Value {
        var address: NameAddress
        /// The value as written in the message; nil for one added here.
        var text: Substring?

        init(_ address: NameAddress, text: Substring? = nil) {
            self.address = address
            self.text = text
        }

        var written: String { text.map { String($0) } ?? address.description }
    }

    var values: [Value]

    /// The values that parse (the validator has rejected a message with one that does not).
    init(_ headers: SIPHeaders) {
        values = headers.splitValues(.route).compactMap { text in NameAddress.parse(text).map { Value($0, text: text) } }
    }

    /// Every value, or the error naming Route when one is malformed (16.3 step 1).
    init(parsing headers: SIPHeaders) throws(SIPParseError) {
        values = []
        for text in headers.splitValues(.route) {
            guard let a = NameAddress.parse(text) else { throw SIPParseError(.invalidHeaderValue("Route")) }
            values.append(Value(a, text: text))
        }
    }

    /// The first Route value alone, parsed (nil when there is none or it is malformed).
    static func first(of headers: SIPHeaders) -> NameAddress? {
        guard let first = headers.values(.route).first, let text = SIPHeaders.firstOfList(first) else {
            return nil
        }
        return NameAddress.parse(text)
    }

    /// Replaces the Route fields, keeping the position of the first one.
    func write(to headers: inout SIPHeaders) {
        guard let at = headers.firstIndex(where: { $0.name == .route }) else {
            for v in values { headers.add(.route, v.written) }
            return
        }
        var fields = Array(headers.fields.filter { $0.name != .route })
        let position = headers.fields[..<at].filter { $0.name != .route }.count
        fields.insert(contentsOf: values.map { SIPHeaderField(name: .route, value: $0.written) }, at: position)
        headers = SIPHeaders(fields)
    }
}
