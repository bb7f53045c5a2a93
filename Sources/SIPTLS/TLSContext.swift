internal import COpenSSL
internal import CSIPTLSShims

/// One frozen `SSL_CTX` built from a ``TLSConfiguration``, shared by every connection.
///
/// Build it off the event loop (it reads files). Loading fails with an error that
/// names the file and OpenSSL's reason: a missing file, an unreadable key, a key
/// that does not match the certificate, a certificate expired or not yet valid, an
/// empty CA file.
public final class TLSContext: @unchecked Sendable {
    // Safety of @unchecked Sendable: `ctx` is configured completely in `init` and never
    // mutated afterwards; OpenSSL allows concurrent SSL_new() from a frozen SSL_CTX
    // (openssl-threads(7)). The other stored properties are immutable Sendable values.
    let ctx: OpaquePointer
    /// The configuration this context was built from.
    public let configuration: TLSConfiguration
    /// The certificate this context presents, if any.
    public let certificate: PeerCertificate?

    /// Builds a context: validates `configuration`, reads its files and configures one `SSL_CTX`.
    /// - Parameter configuration: what to build.
    /// - Throws: ``TLSError/configuration(_:stack:)`` naming the file or setting at fault.
    public init(configuration: TLSConfiguration) throws(TLSError) {
        try configuration.validate()
        OpenSSLErrors.clear()
        guard let ctx = SSL_CTX_new(TLS_method()) else {
            throw .configuration("cannot create a TLS context", stack: OpenSSLErrors.drain())
        }
        var ok = false
        defer { if !ok { SSL_CTX_free(ctx) } }

        let floor: Int32 = configuration.minimumVersion == .tls13 ? TLS1_3_VERSION : TLS1_2_VERSION
        guard CSIPTLSShims_SSL_CTX_set_min_proto_version(ctx, floor) == 1,
              CSIPTLSShims_SSL_CTX_set_max_proto_version(ctx, configuration.maximumVersion == .tls12 ? TLS1_2_VERSION : TLS1_3_VERSION) == 1 else {
            throw .configuration("cannot set the TLS version range", stack: OpenSSLErrors.drain())
        }
        _ = SSL_CTX_set_options(ctx, CSIPTLSShims_SSL_OP_NO_RENEGOTIATION | CSIPTLSShims_SSL_OP_NO_COMPRESSION
                                    | CSIPTLSShims_SSL_OP_CIPHER_SERVER_PREFERENCE)
        // Idle connections give their record buffers back (~17 KB instead of ~51 KB each).
        _ = CSIPTLSShims_SSL_CTX_set_mode(ctx, Int(SSL_MODE_RELEASE_BUFFERS))
        guard SSL_CTX_set_cipher_list(ctx, configuration.cipherList) == 1 else {
            throw .configuration("TLS 1.2 cipher list '\(configuration.cipherList)' selects nothing", stack: OpenSSLErrors.drain())
        }
        if let suites = configuration.cipherSuites, SSL_CTX_set_ciphersuites(ctx, suites) != 1 {
            throw .configuration("TLS 1.3 cipher suites '\(suites)' are not valid", stack: OpenSSLErrors.drain())
        }
        guard CSIPTLSShims_SSL_CTX_set1_groups_list(ctx, configuration.groups) == 1 else {
            throw .configuration("key exchange groups '\(configuration.groups)' are not valid", stack: OpenSSLErrors.drain())
        }

        var leafInfo: PeerCertificate?
        if let chainSource = configuration.certificateChain, let keySource = configuration.privateKey {
            leafInfo = try Self.loadIdentity(ctx, chain: chainSource, key: keySource, passphrase: configuration.privateKeyPassphrase)
        }

        if let roots = configuration.trustRoots {
            try Self.loadTrustRoots(ctx, roots, advertise: configuration.role == .server)
        }

        switch configuration.role {
        case .server:
            var mode = SSL_VERIFY_NONE
            switch configuration.clientCertificates {
            case .none: mode = SSL_VERIFY_NONE
            case .optional: mode = SSL_VERIFY_PEER
            case .required: mode = SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
            }
            if configuration.clientCertificates == .optional {
                // Optional means optional: a certificate that does not verify (a desk phone's
                // factory certificate from an unknown CA) must not cost the connection. The
                // callback keeps the handshake going; SSL_get_verify_result still holds the
                // chain's real result, and only X509_V_OK makes the peer "verified".
                SSL_CTX_set_verify(ctx, mode) { _, _ in 1 }
            } else {
                SSL_CTX_set_verify(ctx, mode, nil)
            }
            // Mandatory whenever clients are verified, or resumption fails (OPENSSL-NOTES T14).
            let sid = Array("sip-registrar".utf8)
            _ = sid.withUnsafeBufferPointer { SSL_CTX_set_session_id_context(ctx, $0.baseAddress, UInt32($0.count)) }
        case .client:
            SSL_CTX_set_verify(ctx, configuration.verifyServer ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nil)
            _ = CSIPTLSShims_SSL_CTX_set_session_cache_mode(ctx, Int(SSL_SESS_CACHE_CLIENT))
        }

        self.ctx = ctx
        self.configuration = configuration
        self.certificate = leafInfo
        ok = true
        ERR_clear_error()
    }

    deinit { SSL_CTX_free(ctx) }

    private static func loadIdentity(_ ctx: OpaquePointer, chain: PEMSource, key: PEMSource,
                                     passphrase: String?) throws(TLSError) -> PeerCertificate {
        let chainBytes = try PEM.bytes(of: chain, what: "certificate")
        let certs = try PEM.certificates(chainBytes, label: chain.label, what: "certificate")
        let leaf = certs[0]
        // Validity first: an expired certificate is the commonest operator mistake.
        if X509_cmp_current_time(X509_get0_notAfter(leaf.pointer)) < 0 {
            throw .configuration("certificate \(chain.label): expired", stack: [])
        }
        if X509_cmp_current_time(X509_get0_notBefore(leaf.pointer)) > 0 {
            throw .configuration("certificate \(chain.label): not yet valid", stack: [])
        }
        OpenSSLErrors.clear()
        guard SSL_CTX_use_certificate(ctx, leaf.pointer) == 1 else {
            throw .configuration("certificate \(chain.label): rejected", stack: OpenSSLErrors.drain())
        }
        for extra in certs.dropFirst() {
            guard CSIPTLSShims_SSL_CTX_add1_chain_cert(ctx, extra.pointer) == 1 else {
                throw .configuration("certificate chain \(chain.label): intermediate rejected", stack: OpenSSLErrors.drain())
            }
        }
        let keyBytes = try PEM.bytes(of: key, what: "private key")
        let pkey = try PEM.privateKey(keyBytes, passphrase: passphrase, label: key.label)
        guard SSL_CTX_use_PrivateKey(ctx, pkey.pointer) == 1 else {
            let stack = OpenSSLErrors.drain()
            if stack.contains(where: { $0.reason.contains("mismatch") }) {
                throw .configuration("private key \(key.label) does not match certificate \(chain.label)", stack: stack)
            }
            throw .configuration("private key \(key.label): rejected", stack: stack)
        }
        guard SSL_CTX_check_private_key(ctx) == 1 else {
            throw .configuration("private key \(key.label) does not match certificate \(chain.label)", stack: OpenSSLErrors.drain())
        }
        return PeerCertificate(x509: leaf.pointer, verified: false)
    }

    private static func loadTrustRoots(_ ctx: OpaquePointer, _ roots: TrustRoots, advertise: Bool) throws(TLSError) {
        OpenSSLErrors.clear()
        switch roots {
        case .system:
            guard SSL_CTX_set_default_verify_paths(ctx) == 1 else {
                throw .configuration("cannot load the system trust store", stack: OpenSSLErrors.drain())
            }
        case .file(let path):
            let bytes = try PEM.bytes(of: .file(path), what: "CA")
            guard !bytes.isEmpty else { throw .configuration("CA file \(path): empty", stack: []) }
            let certs = try PEM.certificates(bytes, label: path, what: "CA file")
            try addToStore(ctx, certs, label: path, advertise: advertise)
        case .pem(let bytes):
            let certs = try PEM.certificates(bytes, label: "PEM data in memory", what: "CA")
            try addToStore(ctx, certs, label: "PEM data in memory", advertise: advertise)
        case .directory(let dir):
            guard SSL_CTX_load_verify_locations(ctx, nil, dir) == 1 else {
                throw .configuration("CA directory \(dir): unusable", stack: OpenSSLErrors.drain())
            }
        }
    }

    private static func addToStore(_ ctx: OpaquePointer, _ certs: [X509Box], label: String, advertise: Bool) throws(TLSError) {
        guard let store = SSL_CTX_get_cert_store(ctx) else {
            throw .configuration("no certificate store", stack: OpenSSLErrors.drain())
        }
        for c in certs {
            guard X509_STORE_add_cert(store, c.pointer) == 1 else {
                throw .configuration("CA file \(label): certificate rejected", stack: OpenSSLErrors.drain())
            }
            // Tell clients which CAs we accept (CertificateRequest certificate_authorities).
            if advertise { _ = SSL_CTX_add_client_CA(ctx, c.pointer) }
        }
    }
}
