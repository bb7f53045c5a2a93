import SIPMessage
import SIPRegistrar
import SIPTLS

/// Authentication and abuse limits of the server (the `auth` and `limits` sections).
package struct SecuritySettings: Sendable, Hashable {
    /// The authentication mode; nil means `digest` when a users file is given, else `off`.
    package var auth: AuthenticationMode?
    /// The users file (`sip-registrar passwd` writes it).
    package var users: String?
    /// Per-domain modes (a domain includes its subdomains).
    package var authDomains: [String: AuthenticationMode] = [:]
    /// One realm for all domains (users `user@REALM`); nil: each domain is its own realm.
    package var realm: String?
    /// Seconds a digest nonce stays usable.
    package var nonceLifetime = 300
    /// Digest algorithms offered, in order (`auth.algorithms`); `[SHA-256]` turns MD5 off.
    package var algorithms: [DigestAlgorithm] = [.sha256, .md5]
    /// A file holding the nonce key (≥ 16 bytes), shared by several nodes: each recognises the others' nonces
    /// and answers them with a fresh challenge, stale=true (a nonce is accepted only by the node that issued it).
    package var secretFile: String?
    /// Addresses or networks whose requests other than REGISTER are not challenged (proxies).
    package var trusted: [String] = []
    /// Failed authentications per source address per window before it is blocked.
    package var failedAuthPerSource = 10
    /// Failed authentications per user name per window before that user is blocked.
    package var failedAuthPerUser = 20
    /// The failed-authentication window, seconds.
    package var failedAuthWindow = 60
    /// How long a block lasts, seconds.
    package var blockSeconds = 300
    /// REGISTERs per source address per second.
    package var registersPerSource = 100
    /// Open TCP/TLS connections per source address.
    package var connectionsPerSource = 256
    /// New TLS connections per source address per second.
    package var tlsHandshakesPerSource = 20
    /// Sources the per-source limits do not apply to.
    package var exempt: [String] = ["127.0.0.0/8", "::1"]
    /// What a source over a limit gets.
    package var limitAction: LimitAction = .reject
    /// At most this many bindings, and addresses of record, in the whole location service
    /// (`limits.max_bindings`, `limits.max_aors`; 0 = no limit). Past it, a REGISTER that would
    /// add one gets 503 with Retry-After; stored bindings keep refreshing.
    package var maxBindings = RegistrarConfiguration.defaultMaxBindings
    package var maxAORs = RegistrarConfiguration.defaultMaxBindings

    package init() {}

    /// The mode in force for domains without their own.
    package var effectiveMode: AuthenticationMode { auth ?? (users != nil ? .digest : .off) }

    /// The authenticator's configuration; the error names the setting.
    package func authenticationConfiguration() throws(ConfigurationError) -> AuthenticationConfiguration {
        let exemptSet: IPAddressSet
        let trustedSet: IPAddressSet
        do throws(IPAddressSetError) {
            exemptSet = try IPAddressSet(exempt)
        } catch {
            throw ConfigurationError("limits.exempt: \(error)")
        }
        do throws(IPAddressSetError) {
            trustedSet = try IPAddressSet(trusted)
        } catch {
            throw ConfigurationError("auth.trusted: \(error)")
        }
        let window = Int64(failedAuthWindow) * 1000
        let block = Int64(blockSeconds) * 1000
        return AuthenticationConfiguration(
            mode: effectiveMode, domainModes: authDomains, realm: realm, nonceLifetime: nonceLifetime, algorithms: algorithms,
            failuresPerSource: .init(limit: failedAuthPerSource, windowMilliseconds: window, cooldownMilliseconds: block),
            failuresPerUser: .init(limit: failedAuthPerUser, windowMilliseconds: window, cooldownMilliseconds: block),
            registersPerSource: .init(limit: registersPerSource, windowMilliseconds: 1_000, cooldownMilliseconds: 0),
            exemptSources: exemptSet, trustedSources: trustedSet, limitAction: limitAction)
    }

    /// Cross-field checks.
    /// The file key of each `AuthenticationConfiguration` property its `validate()` may name.
    static let authenticationSettings = [
        "realm": "auth.realm", "nonceLifetime": "auth.nonce_lifetime", "algorithms": "auth.algorithms", "domainModes": "auth.domains",
    ]

    func validate(clientCertificates: ClientCertificateMode) throws(ConfigurationError) {
        let config = try authenticationConfiguration()
        do throws(RegistrarConfigurationError) {
            try config.validate()
        } catch {
            guard let key = error.property.flatMap({ Self.authenticationSettings[$0] }) else {
                throw ConfigurationError("auth: \(error.description)")
            }
            throw ConfigurationError("auth: \(error.description)", setting: key, reason: error.description)
        }
        if config.needsUsers && users == nil {
            throw ConfigurationError("--auth \(effectiveMode.rawValue) needs a users file (--users FILE; sip-registrar passwd makes one)")
        }
        if config.usesCertificates && clientCertificates == .none {
            throw ConfigurationError("--auth \(effectiveMode.rawValue) needs --client-certs optional or required (and --ca FILE)")
        }
        // auth.nonce_lifetime is checked by AuthenticationConfiguration.validate() above.
        if failedAuthWindow <= 0 {
            throw ConfigurationError("limits.failed_auth_window must be positive (got \(failedAuthWindow))",
                                     setting: "limits.failed_auth_window", reason: "must be positive (got \(failedAuthWindow))")
        }
        for (name, value) in [("limits.failed_auth_per_source", failedAuthPerSource), ("limits.failed_auth_per_user", failedAuthPerUser),
                              ("limits.block_seconds", blockSeconds), ("limits.registers_per_source", registersPerSource),
                              ("limits.connections_per_source", connectionsPerSource),
                              ("limits.tls_handshakes_per_source", tlsHandshakesPerSource)] where value < 0 {
            throw ConfigurationError("\(name) must not be negative (got \(value))", setting: name, reason: "must not be negative (got \(value))")
        }
    }
}
