import SIPMessage
public import SIPRegistrar
import SIPTLS

/// Authentication and abuse limits of the server (the `auth` and `limits` sections).
public struct SecuritySettings: Sendable, Hashable {
    /// The authentication mode; nil means `digest` when a users file is given, else `off`.
    public var auth: AuthenticationMode?
    /// The users file (`sip-registrar passwd` writes it).
    public var users: String?
    /// Per-domain modes (a domain includes its subdomains).
    public var authDomains: [String: AuthenticationMode] = [:]
    /// One realm for all domains (users `user@REALM`); nil: each domain is its own realm.
    public var realm: String?
    /// Seconds a digest nonce stays usable.
    public var nonceLifetime = 300
    /// Digest algorithms offered, in order (`auth.algorithms`); `[SHA-256]` turns MD5 off.
    public var algorithms: [DigestAlgorithm] = [.sha256, .md5]
    /// A file holding the nonce key (≥ 16 bytes), shared by several nodes: each recognises the others' nonces
    /// and answers them with a fresh challenge, stale=true (a nonce is accepted only by the node that issued it).
    public var secretFile: String?
    /// Addresses or networks whose requests other than REGISTER are not challenged (proxies).
    public var trusted: [String] = []
    /// Failed authentications per source address per window before it is blocked.
    public var failedAuthPerSource = 10
    /// Failed authentications per user name per window before that user is blocked.
    public var failedAuthPerUser = 20
    /// The failed-authentication window, seconds.
    public var failedAuthWindow = 60
    /// How long a block lasts, seconds.
    public var blockSeconds = 300
    /// REGISTERs per source address per second.
    public var registersPerSource = 100
    /// Open TCP/TLS connections per source address.
    public var connectionsPerSource = 256
    /// New TLS connections per source address per second.
    public var tlsHandshakesPerSource = 20
    /// Sources the per-source limits do not apply to.
    public var exempt: [String] = ["127.0.0.0/8", "::1"]
    /// What a source over a limit gets.
    public var limitAction: LimitAction = .reject
    /// At most this many bindings, and addresses of record, in the whole location service
    /// (`limits.max_bindings`, `limits.max_aors`; 0 = no limit). Past it, a REGISTER that would
    /// add one gets 503 with Retry-After; stored bindings keep refreshing.
    public var maxBindings = RegistrarConfiguration.defaultMaxBindings
    public var maxAORs = RegistrarConfiguration.defaultMaxBindings

    public init() {}

    /// The mode in force for domains without their own.
    public var effectiveMode: AuthenticationMode { auth ?? (users != nil ? .digest : .off) }

    /// The authenticator's configuration; the error names the setting.
    public func authenticationConfiguration() throws(ConfigurationError) -> AuthenticationConfiguration {
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
    func validate(clientCertificates: ClientCertificateMode) throws(ConfigurationError) {
        let config = try authenticationConfiguration()
        do throws(RegistrarConfigurationError) {
            try config.validate()
        } catch {
            throw ConfigurationError("auth: \(error.description)")
        }
        if config.needsUsers && users == nil {
            throw ConfigurationError("--auth \(effectiveMode.rawValue) needs a users file (--users FILE; sip-registrar passwd makes one)")
        }
        if config.usesCertificates && clientCertificates == .none {
            throw ConfigurationError("--auth \(effectiveMode.rawValue) needs --client-certs optional or required (and --ca FILE)")
        }
        for (name, value) in [("limits.failed_auth_window", failedAuthWindow), ("auth.nonce_lifetime", nonceLifetime)] where value <= 0 {
            throw ConfigurationError("\(name) must be positive (got \(value))")
        }
        for (name, value) in [("limits.failed_auth_per_source", failedAuthPerSource), ("limits.failed_auth_per_user", failedAuthPerUser),
                              ("limits.block_seconds", blockSeconds), ("limits.registers_per_source", registersPerSource),
                              ("limits.connections_per_source", connectionsPerSource),
                              ("limits.tls_handshakes_per_source", tlsHandshakesPerSource)] where value < 0 {
            throw ConfigurationError("\(name) must not be negative (got \(value))")
        }
    }
}

/// Digest hashing on the system OpenSSL (the same library as the TLS legs).
struct OpenSSLDigestHashing: DigestHashing {
    func hash(_ algorithm: DigestAlgorithm, _ bytes: [UInt8]) -> [UInt8] {
        OpenSSLHashing.hash(algorithm == .sha256 ? .sha256 : .md5, bytes)
    }

    func hmacSHA256(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        OpenSSLHashing.hmacSHA256(key: key, message)
    }
}

/// Reading and writing the users file.
public enum UsersFile {
    /// Loads and parses a users file; errors name the file and line.
    public static func load(_ path: String) throws(ConfigurationError) -> UserTable {
        guard let text = ConfigurationLoader.readFile(path) else {
            throw ConfigurationError("\(path): cannot read the users file")
        }
        do throws(UserTableError) {
            return try UserTable.parse(text)
        } catch {
            throw ConfigurationError("\(path):\(error.line): \(error.message)")
        }
    }

    /// Sets the password of `user@realm` (HA1 for SHA-256 and MD5; never the password itself),
    /// keeping its aliases unless new ones are given. Writes a new file and renames it over the
    /// old one, readable by its owner only. Returns whether the user was new.
    @discardableResult
    public static func setPassword(path: String, address: String, password: String, aliases: [String]?) throws(ConfigurationError) -> Bool {
        guard let at = address.lastIndex(of: "@"), at != address.startIndex, address.index(after: at) != address.endIndex,
              !address.contains(where: { $0 == " " || $0 == "\t" || $0 == ":" }) else {
            throw ConfigurationError("'\(address)' is not USER@DOMAIN")
        }
        guard !password.isEmpty else { throw ConfigurationError("empty password (read from standard input)") }
        for a in aliases ?? [] where !a.contains("@") || a.contains(" ") {
            throw ConfigurationError("--alias '\(a)' is not USER@DOMAIN")
        }
        var table = UserTable()
        if access(path, F_OK) == 0 { table = try load(path) }
        let user = String(address[..<at])
        let realm = String(address[address.index(after: at)...]).lowercased()
        let hashing = OpenSSLDigestHashing()
        let existing = table.lookup(user: user, realm: realm)
        var ha1: [DigestAlgorithm: String] = [:]
        for a in DigestAlgorithm.allCases { ha1[a] = hashing.ha1(a, user: user, realm: realm, password: password) }
        table.upsert(DigestUser(user: user, realm: realm, ha1: ha1, aliases: aliases ?? existing?.aliases ?? []))
        try write(table.serialized, to: path)
        return existing == nil
    }

    /// Writes `text` to a new temporary file next to `path` and renames it over `path`. The
    /// temporary file is created with `O_CREAT | O_EXCL | O_NOFOLLOW`, mode 600, under a random
    /// name: a file or symbolic link someone placed there beforehand is never opened, followed
    /// or truncated (the write then fails instead), and nobody else can read the hashes meanwhile.
    static func write(_ text: String, to path: String) throws(ConfigurationError) {
        var fd: Int32 = -1
        var tmp = ""
        for _ in 0..<8 {
            let suffix = ((try? OpenSSLHashing.randomBytes(6)) ?? []).map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined()
            tmp = path + ".tmp.\(getpid()).\(suffix)"
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw ConfigurationError("\(path): cannot write (\(String(cString: strerror(errno))))") }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n <= 0 {
                close(fd)
                unlink(tmp)
                throw ConfigurationError("\(path): cannot write (\(String(cString: strerror(errno))))")
            }
            written += n
        }
        fsync(fd)
        close(fd)
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw ConfigurationError("\(path): cannot replace (\(String(cString: strerror(errno))))")
        }
    }
}

#if canImport(Glibc)
import Glibc
#endif
