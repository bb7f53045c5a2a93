/// Where PEM data comes from.
public enum PEMSource: Sendable, Hashable {
    /// A PEM file on disk, read when the context is built (and again on reload).
    case file(String)
    /// PEM data in memory.
    case bytes([UInt8])

    var label: String {
        switch self {
        case .file(let path): return path
        case .bytes: return "PEM data in memory"
        }
    }
}

/// Which certificates a peer's certificate is verified against.
public enum TrustRoots: Sendable, Hashable {
    /// The system store (Debian: /etc/ssl/certs).
    case system
    /// A PEM file of CA certificates.
    case file(String)
    /// A hashed directory of CA certificates (c_rehash).
    case directory(String)
    /// PEM CA certificates in memory.
    case pem([UInt8])
}

/// Whether a server asks clients for certificates.
public enum ClientCertificateMode: String, Sendable, Hashable, CaseIterable {
    /// Never asked: the default, since some softphones stall when asked.
    case none
    /// Asked for and verified when sent; a client without one is still accepted.
    case optional
    /// A verified certificate is mandatory.
    case required
}

/// A TLS protocol version.
public enum TLSVersion: String, Sendable, Hashable, CaseIterable, Comparable {
    /// TLS 1.2 (RFC 5246), the lowest version this module speaks.
    case tls12 = "TLSv1.2"
    /// TLS 1.3 (RFC 8446), preferred.
    case tls13 = "TLSv1.3"

    /// Orders versions by age: TLS 1.2 is below TLS 1.3.
    public static func < (a: TLSVersion, b: TLSVersion) -> Bool { a == .tls12 && b == .tls13 }
}

/// A validated description of a TLS endpoint: everything a ``TLSContext`` is built from.
public struct TLSConfiguration: Sendable, Hashable {
    /// Which side of the handshake the endpoint takes.
    public enum Role: Sendable, Hashable {
        /// Accepts connections and presents a certificate.
        case server
        /// Opens connections and verifies the server.
        case client
    }

    /// Server or client.
    public var role: Role
    /// Leaf first, then intermediates.
    public var certificateChain: PEMSource?
    /// The private key of the chain's leaf certificate.
    public var privateKey: PEMSource?
    /// Passphrase of an encrypted private key.
    public var privateKeyPassphrase: String?
    /// Roots for verifying the peer: clients' certificates (server) or the server (client).
    public var trustRoots: TrustRoots?
    /// Server: whether clients are asked for certificates (``ClientCertificateMode/none`` by default).
    public var clientCertificates: ClientCertificateMode
    /// The lowest version offered or accepted: TLS 1.2 by default.
    public var minimumVersion: TLSVersion
    /// The highest version offered or accepted; nil for TLS 1.3.
    public var maximumVersion: TLSVersion?
    /// TLS 1.2 cipher list: ECDHE key exchange and AEAD ciphers only by default.
    public var cipherList: String
    /// TLS 1.3 suites, in the server's order of preference: ``defaultCipherSuites`` unless set.
    public var cipherSuites: String?
    /// Key-exchange groups.
    public var groups: String
    /// Client: the name sent in SNI and checked against the server certificate.
    public var serverHostname: String?
    /// Client: verify the server's chain (and name when `serverHostname` is set).
    public var verifyServer: Bool
    /// A handshake that takes longer is aborted.
    public var handshakeTimeout: Duration
    /// How long to wait for the peer's close_notify after sending ours.
    public var closeTimeout: Duration
    /// Plaintext written before the handshake completes is buffered up to this many bytes.
    public var maxBufferedPlaintextBytes: Int

    /// The TLS 1.2 cipher list used unless ``cipherList`` is set: ECDHE key exchange, AEAD ciphers.
    public static let defaultCipherList = "ECDHE+AESGCM:ECDHE+CHACHA20"
    /// The TLS 1.3 suites used unless ``cipherSuites`` is set: OpenSSL's three, with
    /// AES-128-GCM first (the suite RFC 8446 9.1 makes mandatory). The server picks by its own
    /// order, and this one keeps about 300 bytes less of key and digest state per connection
    /// than AES-256-GCM with SHA-384.
    public static let defaultCipherSuites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
    /// The key-exchange groups used unless ``groups`` is set.
    public static let defaultGroups = "X25519:P-256:P-384"

    init(role: Role) {
        self.role = role
        self.certificateChain = nil
        self.privateKey = nil
        self.privateKeyPassphrase = nil
        self.trustRoots = nil
        self.clientCertificates = .none
        self.minimumVersion = .tls12
        self.maximumVersion = nil
        self.cipherList = Self.defaultCipherList
        self.cipherSuites = Self.defaultCipherSuites
        self.groups = Self.defaultGroups
        self.serverHostname = nil
        self.verifyServer = true
        self.handshakeTimeout = .seconds(10)
        self.closeTimeout = .seconds(5)
        self.maxBufferedPlaintextBytes = 256 * 1024
    }

    /// A server with a certificate chain and key; client certificates are not requested unless asked for.
    public static func server(certificateChain: PEMSource, privateKey: PEMSource, passphrase: String? = nil,
                              clientCertificates: ClientCertificateMode = .none, trustRoots: TrustRoots? = nil) -> TLSConfiguration {
        var c = TLSConfiguration(role: .server)
        c.certificateChain = certificateChain
        c.privateKey = privateKey
        c.privateKeyPassphrase = passphrase
        c.clientCertificates = clientCertificates
        c.trustRoots = trustRoots
        return c
    }

    /// A client that verifies the server against `trustRoots` (the system store by default).
    public static func client(serverHostname: String? = nil, trustRoots: TrustRoots = .system, verifyServer: Bool = true,
                              certificateChain: PEMSource? = nil, privateKey: PEMSource? = nil) -> TLSConfiguration {
        var c = TLSConfiguration(role: .client)
        c.serverHostname = serverHostname
        c.trustRoots = trustRoots
        c.verifyServer = verifyServer
        c.certificateChain = certificateChain
        c.privateKey = privateKey
        return c
    }

    /// Checks what can be checked without reading files.
    public func validate() throws(TLSError) {
        if role == .server {
            guard certificateChain != nil else { throw .configuration("a TLS server needs a certificate", stack: []) }
            guard privateKey != nil else { throw .configuration("a TLS server needs a private key", stack: []) }
            if clientCertificates != .none && trustRoots == nil {
                throw .configuration("client certificates \(clientCertificates.rawValue) need a CA file to verify them", stack: [])
            }
        }
        if (certificateChain == nil) != (privateKey == nil) {
            throw .configuration("a certificate and its private key go together", stack: [])
        }
        if let maximumVersion, maximumVersion < minimumVersion {
            throw .configuration("the maximum TLS version is below the minimum", stack: [])
        }
        guard maxBufferedPlaintextBytes > 0 else { throw .configuration("the plaintext buffer cap must be positive", stack: []) }
        guard handshakeTimeout > .zero else { throw .configuration("the handshake timeout must be positive", stack: []) }
    }
}
