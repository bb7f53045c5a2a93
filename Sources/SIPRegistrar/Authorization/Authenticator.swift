public import SIPMessage

/// The authorization step of the receive chain (before the registrar): digest
/// authentication with stateless nonces (RFC 3261 22.4, RFC 7616, RFC 8760),
/// client-certificate identities (RFC 5922-style subjectAltName URIs), address-of-
/// record ownership, and abuse limits.
///
/// An unknown user and a wrong password are indistinguishable from outside: both get
/// the same fresh challenge after the same work (a stand-in HA1 is derived for unknown
/// users and checked exactly like a real one).
///
/// ```swift
/// let auth = try Authenticator(configuration: .init(mode: .digest), users: table, hashing: hashing,
///                              secret: randomBytes)
/// dispatcher.addReceiver(auth)       // first: refuses or challenges
/// dispatcher.addReceiver(registrar)  // then: RFC 3261 10.3
/// ```
public final class Authenticator: SIPReceiver {
    /// The modes and limits it was made with.
    public let configuration: AuthenticationConfiguration
    let hashing: any DigestHashing
    let clock: any RegistrarClock
    let serverHeader: String?
    let domains: DomainMatcher
    let nonces: DigestNonces
    let secret: [UInt8]
    let usersState: LockedState<UserTable>
    /// Requests that need no challenge because of what they carry (set by the server: a Route
    /// with a flow token another node signed with the key the nodes share).
    let trustedRequest = LockedState<(@Sendable (SIPRequest) -> Bool)?>(nil)
    let sourceFailures: WindowLimiter
    let userFailures: WindowLimiter
    let registerRate: WindowLimiter
    /// Per user (hash of `user@realm`), the hashes of the last sources (``SourceKey/limitKey(forIP:)``)
    /// that authenticated as that user, most recent last. Hashes keep an entry small (Hasher is seeded
    /// per process, so nobody outside can aim at a collision); a collision could only let a source try
    /// that user's password while the user is blocked, never accept a wrong one.
    let goodSources: LockedState<LRUTable<Int, [Int]>>
    let observer: (@Sendable (AuthenticationEvent) -> Void)?

    /// Makes the authorization step; throws when the configuration or the secret is unusable.
    ///
    /// - Parameters:
    ///   - configuration: modes and limits.
    ///   - users: the users file's entries (replace them later with ``replaceUsers(_:)``).
    ///   - hashing: the SHA-256/MD5/HMAC implementation.
    ///   - secret: the nonce key, at least 16 random bytes; nodes that share it recognise each other's nonces
    ///     (and answer them `stale=true`: a nonce is accepted only by the node named in it, `configuration.nodeName`).
    ///   - domains: the served domains (empty: all), used to pick the realm of non-REGISTER requests.
    ///   - clock: the time of the limits and of nonce ages.
    ///   - serverHeader: a Server header for the answers.
    ///   - observer: called for every challenge, success, failure and limit hit.
    public init(configuration: AuthenticationConfiguration, users: UserTable, hashing: any DigestHashing, secret: [UInt8],
                domains: [String] = [], clock: any RegistrarClock = SystemRegistrarClock(), serverHeader: String? = nil,
                observer: (@Sendable (AuthenticationEvent) -> Void)? = nil) throws(RegistrarConfigurationError) {
        try configuration.validate()
        guard secret.count >= 16 else { throw .invalid("the nonce secret must be at least 16 bytes") }
        self.configuration = configuration
        self.hashing = hashing
        self.clock = clock
        self.serverHeader = serverHeader
        self.domains = DomainMatcher(domains)
        self.secret = secret
        self.nonces = DigestNonces(secret: secret, hashing: hashing, lifetimeSeconds: configuration.nonceLifetime,
                                   maxTracked: configuration.maxTrackedNonces, node: configuration.nodeName)
        self.usersState = LockedState(users)
        self.sourceFailures = WindowLimiter(policy: configuration.failuresPerSource)
        self.userFailures = WindowLimiter(policy: configuration.failuresPerUser)
        self.registerRate = WindowLimiter(policy: configuration.registersPerSource)
        self.goodSources = LockedState(LRUTable(capacity: configuration.rememberedUsers))
        self.observer = observer
    }

    /// Lets requests through unchallenged for which `check` is true (in proxy mode only).
    public func setTrustedRequest(_ check: @escaping @Sendable (SIPRequest) -> Bool) {
        trustedRequest.withLock { $0 = check }
    }

    /// Swaps in a new users table (a reloaded users file); requests in flight finish with the old one.
    public func replaceUsers(_ users: UserTable) {
        usersState.withLock { $0 = users }
    }

    /// How many users the current users table holds.
    public var userCount: Int { usersState.withLock { $0.count } }

    // MARK: Receiving

    /// The receive chain's entry point: ``authorize(_:from:)``.
    public func receive(_ request: SIPRequest, from source: SIPSource) async -> SIPReceiveOutcome {
        authorize(request, from: source)
    }

    /// The decision, synchronously (no suspension: everything is in memory): `.pass` when the
    /// request needs no authentication here, `.forward` with the source's established identity,
    /// or the answer to an ``AuthenticationError`` (`.discard` for a limit in drop mode).
    public func authorize(_ request: SIPRequest, from source: SIPSource) -> SIPReceiveOutcome {
        do throws(AuthenticationError) {
            switch try decide(request, from: source) {
            case .pass: return .pass
            case .accepted(let enriched): return .forward(request, enriched)
            }
        } catch {
            return answer(request, error)
        }
    }

    /// What ``decide(_:from:)`` found when it did not refuse the request.
    enum Decision {
        /// Nothing to authenticate here: the next receiver decides.
        case pass
        /// Authenticated: the source with its identity.
        case accepted(SIPSource)
    }

    /// The whole decision; a refusal is thrown.
    func decide(_ request: SIPRequest, from source: SIPSource) throws(AuthenticationError) -> Decision {
        let method = request.method
        // ACK and CANCEL cannot be challenged (RFC 3261 22.1).
        if method == .ack || method == .cancel { return .pass }
        let isRegister = method == .register
        let now = clock.nowMilliseconds()
        let ip = source.remoteHost
        let exempt = configuration.exemptSources.contains(ip)
        // Per-source limits count an IPv6 source by its /64.
        let sourceKey = exempt ? ip : SourceKey.limitKey(forIP: ip)

        if isRegister && !exempt {
            if case .blocked(let until, let first) = registerRate.record(sourceKey, now: now) {
                observer?(.limited(.registersPerSource, key: sourceKey, untilMilliseconds: until, first: first))
                throw .tooManyRegisters(retryAfter: Int(max(1, (until - now + 999) / 1000)))
            }
        }
        if !exempt && sourceFailures.isBlocked(sourceKey, now: now) { throw .tooManyFailures }

        // Nothing to authenticate anywhere: no header needs reading.
        if configuration.mode == .off && configuration.domainModes.isEmpty { return .pass }

        // Which address is claimed, and so which domain's mode and realm apply.
        let domain: String
        var aor: String?
        if isRegister {
            guard let to = try? request.headers.to, to.uri.isSIP, let a = normalizedAOR(to.uri) else { return .pass }
            aor = a
            domain = to.uri.hostName
        } else {
            // Requests to the server itself (OPTIONS pings) and from trusted proxies are not challenged.
            if request.uri.user == nil || configuration.trustedSources.contains(ip) { return .pass }
            if configuration.challengesAsProxy {
                // RFC 3261 22.3: a proxy challenges its own users' requests; calls from elsewhere to
                // a local user, and requests inside a dialog, go on unchallenged.
                if ((try? request.headers.to) ?? nil)?.tag != nil { return .pass }
                if let check = trustedRequest.withLock({ $0 }), check(request) { return .pass }
                guard let from = try? request.headers.from, from.uri.isSIP, domains.serves(from.uri.hostName) else { return .pass }
                domain = from.uri.hostName
                aor = normalizedAOR(from.uri)
            } else if let from = try? request.headers.from, from.uri.isSIP, domains.serves(from.uri.hostName) {
                domain = from.uri.hostName
            } else {
                domain = request.uri.hostName
            }
        }
        let realm = configuration.realm ?? domain
        let proxy = challengesAsProxy(request)
        let mode = configuration.mode(for: isRegister || proxy ? domain : request.uri.hostName)
        if mode == .off { return .pass }

        // A verified client certificate naming the address of record (RFC 5922 style subjectAltName URI).
        if mode.allowsCertificate, let peer = source.tlsPeer, peer.verified, source.transport == .tls {
            let identities = peer.sipURIs.compactMap { text -> (String, String)? in
                guard let uri = SIPURI.parse(Substring(text)), let a = normalizedAOR(uri) else { return nil }
                return (text, a)
            }
            if !identities.isEmpty {
                let claimed = aor ?? fromAOR(request)
                if let claimed, let match = identities.first(where: { DigestUser.sameAOR($0.1, claimed) }) {
                    return accept(source: source, identity: match.0, method: .certificate)
                }
                observer?(.failed(.certificateMismatch, user: identities.first?.0, realm: realm, source: source.remoteAddress))
                throw .certificateMismatch
            }
        }
        guard mode.allowsDigest else {
            observer?(.failed(.certificateMissing, user: nil, realm: realm, source: source.remoteAddress))
            throw .certificateRequired
        }
        return try digest(request, source: source, realm: realm, aor: aor, exempt: exempt, now: now)
    }

    // MARK: Digest

    /// Digest authentication of a request that needs it: the identity, or the challenge or refusal thrown.
    func digest(_ request: SIPRequest, source: SIPSource, realm: String, aor: String?, exempt: Bool,
                now: Int64) throws(AuthenticationError) -> Decision {
        let proxy = challengesAsProxy(request)
        let fields = (try? (proxy ? request.headers.proxyAuthorization : request.headers.authorization)) ?? []
        guard let credentials = fields.first(where: {
            $0.scheme.lowercased() == "digest" && ($0["realm"] ?? "").lowercased() == realm
        }) else {
            // No credentials for this realm yet: the normal first leg.
            throw challenge(request, realm: realm, stale: false, now: now)
        }
        guard let username = credentials["username"], !username.isEmpty,
              let nonce = credentials["nonce"], let digestURI = credentials["uri"],
              let response = credentials["response"], let qop = credentials["qop"], qop.lowercased() == "auth",
              let ncText = credentials["nc"], ncText.utf8.count == 8, let nc = UInt32(ncText, radix: 16), nc > 0,
              let cnonce = credentials["cnonce"], !cnonce.isEmpty,
              let algorithm = credentials["algorithm"].map({ DigestAlgorithm(token: $0) }) ?? .md5 else {
            throw failure(.malformed, request, source: source, user: credentials["username"], realm: realm, exempt: exempt, now: now)
        }
        let userKey = username + "@" + realm
        let sourceKey = SourceKey.limitKey(forIP: source.remoteHost)
        // A blocked user name stays open to the sources that logged in as it before: otherwise anyone
        // could lock a user out for good by sending wrong passwords in its name.
        if userFailures.isBlocked(userKey, now: now), !isGoodSource(user: userKey, source: sourceKey) {
            throw .tooManyFailures
        }
        // An algorithm the operator turned off (`auth.algorithms`) is refused like a wrong password:
        // a fresh challenge offering only the algorithms in use (RFC 8760 2.4 leaves the choice to the server).
        guard configuration.algorithms.contains(algorithm) else {
            throw failure(.badCredentials, request, source: source, user: username, realm: realm, exempt: exempt, now: now)
        }
        // RFC 7616 3.4.6: the digest-uri names the Request-URI.
        if digestURI != request.uri.description {
            guard let u = SIPURI.parse(Substring(digestURI)), u == request.uri else {
                throw .digestURIMismatch
            }
        }

        let nonceState = nonces.check(nonce, realm: realm, now: now)
        if nonceState == .invalid {
            throw failure(.badNonce, request, source: source, user: username, realm: realm, exempt: exempt, now: now)
        }

        // The same work for a known and an unknown user: a stand-in HA1 is always derived.
        let standIn = hexString(hashing.hmacSHA256(key: secret, Array("\(algorithm.rawValue):\(username):\(realm)".utf8))
            .prefix(algorithm.hexLength / 2))
        let user = usersState.withLock { $0.lookup(user: username, realm: realm) }
        let ha1 = user?.ha1[algorithm] ?? standIn
        let expected = Self.response(hashing, algorithm, ha1: ha1, nonce: nonce, nc: ncText, cnonce: cnonce, qop: qop,
                                     method: request.method.rawValue, uri: digestURI)
        guard constantTimeEqual(Array(expected.utf8), Array(response.lowercased().utf8)), let user, user.ha1[algorithm] != nil else {
            throw failure(.badCredentials, request, source: source, user: username, realm: realm, exempt: exempt, now: now)
        }

        // The password was right. Now the nonce's age, node and count: an expired nonce, or one another
        // node issued (its nonce-counts are not known here), gets a fresh challenge with stale=true
        // (RFC 7616 3.3: the client retries without asking for the password again).
        guard case .valid(let issued) = nonceState else {
            throw challenge(request, realm: realm, stale: true, now: now)
        }
        switch nonces.use(nonce, issuedAt: issued, count: nc, now: now) {
        case .fresh: break
        case .forgotten: throw challenge(request, realm: realm, stale: true, now: now)
        case .replayed:
            observer?(.failed(.replay, user: username, realm: realm, source: source.remoteAddress))
            throw challenge(request, realm: realm, stale: false, now: now)
        }
        rememberGoodSource(user: userKey, source: sourceKey)

        if let aor, !user.owns(aor: aor) {
            observer?(.failed(.notOwner, user: user.aor, realm: realm, source: source.remoteAddress))
            throw .notOwner(asProxy: proxy)
        }
        return accept(source: source, identity: user.aor, method: .digest)
    }

    /// RFC 7616 3.4.1 with `qop=auth`: `H(HA1:nonce:nc:cnonce:qop:H(method:uri))` in lower-case hex.
    static func response(_ hashing: any DigestHashing, _ algorithm: DigestAlgorithm, ha1: String, nonce: String, nc: String,
                         cnonce: String, qop: String, method: String, uri: String) -> String {
        let ha2 = hashing.hexHash(algorithm, method + ":" + uri)
        return hashing.hexHash(algorithm, [ha1, nonce, nc, cnonce, qop, ha2].joined(separator: ":"))
    }

    /// Counts a failed authentication against the source and the user; the answer is a fresh challenge.
    func failure(_ reason: AuthenticationEvent.Failure, _ request: SIPRequest, source: SIPSource, user: String?, realm: String,
                 exempt: Bool, now: Int64) -> AuthenticationError {
        observer?(.failed(reason, user: user, realm: realm, source: source.remoteAddress))
        if !exempt {
            let key = SourceKey.limitKey(forIP: source.remoteHost)
            if case .blocked(let until, let first) = sourceFailures.record(key, now: now) {
                observer?(.limited(.failuresPerSource, key: key, untilMilliseconds: until, first: first))
            }
        }
        if let user, case .blocked(let until, let first) = userFailures.record(user + "@" + realm, now: now) {
            observer?(.limited(.failuresPerUser, key: user + "@" + realm, untilMilliseconds: until, first: first))
        }
        return challenge(request, realm: realm, stale: false, now: now)
    }

    // MARK: Good sources

    /// Remembers that `source` (a limit key) authenticated as `user` (`user@realm`): the most recent
    /// `goodSourcesPerUser` sources are kept, for the `rememberedUsers` users authenticated most recently.
    func rememberGoodSource(user: String, source: String) {
        let u = user.hashValue, s = source.hashValue
        let keep = configuration.goodSourcesPerUser
        goodSources.withLock { table in
            table.modify(u, orInsert: { [] }) { list in
                if let i = list.firstIndex(of: s) {
                    list.remove(at: i)
                } else if list.count >= keep {
                    list.removeFirst(list.count - keep + 1)
                }
                list.append(s)
            }
        }
    }

    /// Whether `source` authenticated as `user` recently.
    func isGoodSource(user: String, source: String) -> Bool {
        let u = user.hashValue, s = source.hashValue
        return goodSources.withLock { $0.value(forKey: u)?.contains(s) ?? false }
    }

    // MARK: Answers

    /// An authenticated request: the source with its identity, reported to the observer.
    func accept(source: SIPSource, identity: String, method: SIPAuthenticationMethod) -> Decision {
        var s = source
        s.authenticatedIdentity = identity
        s.authenticationMethod = method
        observer?(.authenticated(identity: identity, method: method, source: source.remoteAddress))
        return .accepted(s)
    }

    /// A challenge with one value per algorithm (RFC 8760 4: SHA-256 first), a fresh nonce each
    /// time; as a proxy it is answered 407 with Proxy-Authenticate (RFC 3261 22.3).
    func challenge(_ request: SIPRequest, realm: String, stale: Bool, now: Int64) -> AuthenticationError {
        observer?(.challenged(realm: realm, stale: stale))
        let quotedRealm = realm.replacingQuotes()
        let challenges = configuration.algorithms.map { algorithm in
            let nonce = nonces.make(realm: realm, now: now)
            var value = "Digest realm=\"\(quotedRealm)\", nonce=\"\(nonce)\", algorithm=\(algorithm.rawValue), qop=\"auth\""
            if stale { value += ", stale=true" }
            return value
        }
        return .challenge(asProxy: challengesAsProxy(request), challenges: challenges)
    }

    /// The one place a refusal becomes what is sent: its answer, or nothing for a limit
    /// when the configuration drops such requests.
    func answer(_ request: SIPRequest, _ error: AuthenticationError) -> SIPReceiveOutcome {
        if error.isLimit, configuration.limitAction == .drop { return .discard }
        return .respond(.answering(request, error, server: serverHeader))
    }

    /// Whether `request` is challenged the proxy's way (407, Proxy-Authenticate, Proxy-Authorization).
    func challengesAsProxy(_ request: SIPRequest) -> Bool {
        request.method != .register && configuration.challengesAsProxy
    }

    func fromAOR(_ request: SIPRequest) -> String? {
        guard let from = try? request.headers.from, from.uri.isSIP else { return nil }
        return normalizedAOR(from.uri)
    }
}

extension String {
    /// A realm inside a quoted-string: quotes and backslashes escaped.
    func replacingQuotes() -> String {
        var out = ""
        for c in self {
            if c == "\"" || c == "\\" { out.append("\\") }
            out.append(c)
        }
        return out
    }
}
