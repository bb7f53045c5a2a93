public import SIPMessage

/// How REGISTERs (and the other requests a registrar answers) must prove who sent them.
public enum AuthenticationMode: String, Sendable, Hashable, CaseIterable {
    /// Anyone may register any address (Net::SIP's registrar without an Authorize step).
    case off
    /// HTTP digest (RFC 3261 22.4, RFC 8760): SHA-256 and MD5, `qop=auth`.
    case digest
    /// Only a verified TLS client certificate whose subjectAltName URI is the address of record.
    case certificate
    /// A matching certificate is enough; without one, digest.
    case digestOrCertificate = "digest-or-certificate"

    var allowsCertificate: Bool { self == .certificate || self == .digestOrCertificate }
    var allowsDigest: Bool { self == .digest || self == .digestOrCertificate }
}

/// What a source over a limit gets.
public enum LimitAction: String, Sendable, Hashable, CaseIterable {
    /// An answer: 403 for failed-authentication blocks, 503 with Retry-After for rate limits.
    case reject
    /// Nothing at all: the request is dropped (attack tools wait for their time-outs).
    case drop
}

/// Authentication and abuse-limit settings of an ``Authenticator``.
public struct AuthenticationConfiguration: Sendable, Hashable {
    /// The mode for domains without an entry in `domainModes`.
    public var mode: AuthenticationMode
    /// Per served domain (matching the domain and its subdomains), a mode that overrides `mode`.
    public var domainModes: [String: AuthenticationMode]
    /// One realm for every domain; nil: each domain is its own realm (the To domain of a REGISTER).
    /// With one realm the users file names users `user@REALM`, and aliases may span domains.
    public var realm: String?
    /// A nonce is accepted this many seconds after it was issued; later it is answered `stale=true`.
    public var nonceLifetime: Int
    /// Challenges offered, in order of preference (RFC 8760 2.4: SHA-256 first). Credentials with an
    /// algorithm not listed are refused like a wrong password (`[.sha256]` turns MD5 off).
    public var algorithms: [DigestAlgorithm]
    /// This node's name, bound into every nonce it issues: nodes sharing the nonce secret answer each
    /// other's nonces with a fresh challenge (`stale=true`) instead of accepting them, because the
    /// nonce-counts that refuse replays live in the issuing node's memory (RFC 7616 3.4.5).
    public var nodeName: String
    /// Failed authentications allowed per source address per window.
    public var failuresPerSource: WindowLimiter.Policy
    /// Failed authentications allowed per user name (known or not) per window.
    public var failuresPerUser: WindowLimiter.Policy
    /// REGISTERs allowed per source address per window (counted before authentication).
    public var registersPerSource: WindowLimiter.Policy
    /// Sources no per-source limit applies to (loopback by default: local tools and load tests).
    public var exemptSources: IPAddressSet
    /// Requests other than REGISTER from these sources (proxies that ask where a user is)
    /// are not challenged. REGISTER is always authenticated.
    public var trustedSources: IPAddressSet
    /// What a source over a limit gets.
    public var limitAction: LimitAction
    /// The server proxies requests other than REGISTER (RFC 3261 22.3): they are challenged
    /// with `407` and `Proxy-Authenticate`, and only when their From is in a served domain
    /// (a call from another domain to a local user is let through, as an incoming call); a
    /// request inside a dialog is not challenged (the proxy forwards it only along its own
    /// signed Record-Route). Off: a `401` challenge by the Request-URI's domain, as a UAS.
    public var challengesAsProxy = false
    /// At most this many digest nonces are tracked for replay protection; older ones are then refused as stale.
    public var maxTrackedNonces: Int
    /// Users whose recent good sources are remembered (least recently authenticated forgotten first);
    /// while a user is blocked by `failuresPerUser`, those sources may still log in.
    public var rememberedUsers: Int
    /// Good sources remembered per user (the most recent ones).
    public var goodSourcesPerUser: Int

    /// A configuration; every value has the default documented at its property.
    /// Call ``validate()`` (the ``Authenticator`` does) before use.
    public init(mode: AuthenticationMode = .digest, domainModes: [String: AuthenticationMode] = [:], realm: String? = nil,
                nonceLifetime: Int = 300,
                algorithms: [DigestAlgorithm] = [.sha256, .md5],
                failuresPerSource: WindowLimiter.Policy = .init(limit: 10, windowMilliseconds: 60_000, cooldownMilliseconds: 300_000),
                failuresPerUser: WindowLimiter.Policy = .init(limit: 20, windowMilliseconds: 60_000, cooldownMilliseconds: 300_000),
                registersPerSource: WindowLimiter.Policy = .init(limit: 100, windowMilliseconds: 1_000, cooldownMilliseconds: 10_000),
                exemptSources: IPAddressSet = .loopback, trustedSources: IPAddressSet = .empty, limitAction: LimitAction = .reject,
                maxTrackedNonces: Int = 1_000_000, nodeName: String = "", rememberedUsers: Int = 1 << 20,
                goodSourcesPerUser: Int = 8) {
        self.mode = mode
        self.domainModes = domainModes
        self.realm = realm?.lowercased()
        self.nonceLifetime = nonceLifetime
        self.algorithms = algorithms
        self.failuresPerSource = failuresPerSource
        self.failuresPerUser = failuresPerUser
        self.registersPerSource = registersPerSource
        self.exemptSources = exemptSources
        self.trustedSources = trustedSources
        self.limitAction = limitAction
        self.maxTrackedNonces = maxTrackedNonces
        self.nodeName = nodeName
        self.rememberedUsers = rememberedUsers
        self.goodSourcesPerUser = goodSourcesPerUser
    }

    /// Checks the settings; throws a description of the first bad one.
    public func validate() throws(RegistrarConfigurationError) {
        if let realm, realm.isEmpty || realm.contains(where: { $0 == "\"" || $0 == "\\" || $0 == " " }) {
            throw .invalidProperty("realm", "realm '\(realm)' must be a non-empty name without quotes or spaces")
        }
        guard nonceLifetime > 0 else { throw .invalidProperty("nonceLifetime", "nonce lifetime must be positive (got \(nonceLifetime))") }
        guard !algorithms.isEmpty else { throw .invalidProperty("algorithms", "at least one digest algorithm is needed") }
        guard Set(algorithms).count == algorithms.count else { throw .invalidProperty("algorithms", "a digest algorithm is listed twice") }
        guard maxTrackedNonces > 0 else { throw .invalid("max tracked nonces must be positive") }
        guard rememberedUsers > 0, goodSourcesPerUser > 0 else { throw .invalid("remembered users and good sources must be positive") }
        for (d, _) in domainModes where d.isEmpty || d.contains(where: { $0 == " " || $0 == "@" || $0 == ":" }) {
            throw .invalidProperty("domainModes", "auth domain '\(d)' is not a host name")
        }
    }

    /// The mode for a domain: the most specific `domainModes` entry, else `mode`.
    public func mode(for host: String) -> AuthenticationMode {
        guard !domainModes.isEmpty else { return mode }
        let h = host.lowercased()
        var best: (length: Int, mode: AuthenticationMode)?
        for (d, m) in domainModes {
            let dl = d.lowercased()
            if h == dl || h.hasSuffix("." + dl), dl.count > (best?.length ?? -1) { best = (dl.count, m) }
        }
        return best?.mode ?? mode
    }

    /// Whether any domain needs the users file.
    public var needsUsers: Bool {
        mode.allowsDigest || domainModes.values.contains { $0.allowsDigest }
    }
    /// Whether any domain accepts certificates.
    public var usesCertificates: Bool {
        mode.allowsCertificate || domainModes.values.contains { $0.allowsCertificate }
    }
}
