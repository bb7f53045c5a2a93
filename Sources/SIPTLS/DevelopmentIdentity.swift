internal import COpenSSL
internal import CSIPTLSShims

/// A throw-away identity for development: an ECDSA P-256 key and a self-signed
/// certificate for the given names, made in memory. Never for production.
public struct DevelopmentIdentity: Sendable {
    /// The self-signed certificate, PEM-encoded.
    public var certificatePEM: [UInt8]
    /// The certificate's unencrypted private key, PEM-encoded (PKCS#8).
    public var privateKeyPEM: [UInt8]

    /// Generates a key and a certificate valid from an hour ago for `days` days, with the
    /// names as subjectAltName entries (IP addresses as IP entries, the rest as DNS names)
    /// and the first name as common name.
    public static func generate(names: [String], days: Int = 365) throws(TLSError) -> DevelopmentIdentity {
        guard let first = names.first else { throw .configuration("a development certificate needs a name", stack: []) }
        OpenSSLErrors.clear()
        guard let key = CSIPTLSShims_generate_p256_key() else {
            throw .configuration("cannot generate a P-256 key", stack: OpenSSLErrors.drain())
        }
        defer { EVP_PKEY_free(key) }
        guard let cert = X509_new() else { throw .configuration("out of memory", stack: OpenSSLErrors.drain()) }
        defer { X509_free(cert) }
        _ = X509_set_version(cert, 2)
        var serial = [UInt8](repeating: 0, count: 16)
        _ = serial.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, 16) }
        serial[0] &= 0x7F
        let bn = serial.withUnsafeBufferPointer { BN_bin2bn($0.baseAddress, 16, nil) }
        defer { BN_free(bn) }
        _ = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert))
        _ = X509_gmtime_adj(X509_getm_notBefore(cert), -3600)
        _ = X509_gmtime_adj(X509_getm_notAfter(cert), days * 86_400)
        _ = X509_set_pubkey(cert, key)
        let name = X509_get_subject_name(cert)
        _ = X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, first, -1, -1, 0)
        _ = X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, "sip-registrar development", -1, -1, 0)
        _ = X509_set_issuer_name(cert, name)
        let san = names.map { n in n.allSatisfy({ $0.isNumber || $0 == "." }) || n.contains(":") ? "IP:\(n)" : "DNS:\(n)" }
            .joined(separator: ",")
        guard CSIPTLSShims_X509_add_ext_text(cert, "subjectAltName", san) == 1,
              CSIPTLSShims_X509_add_ext_text(cert, "basicConstraints", "critical,CA:FALSE") == 1,
              CSIPTLSShims_X509_add_ext_text(cert, "extendedKeyUsage", "serverAuth,clientAuth") == 1 else {
            throw .configuration("cannot add certificate extensions", stack: OpenSSLErrors.drain())
        }
        guard X509_sign(cert, key, EVP_sha256()) > 0 else {
            throw .configuration("cannot sign the development certificate", stack: OpenSSLErrors.drain())
        }
        let certPEM = try Self.pem { PEM_write_bio_X509($0, cert) }
        let keyPEM = try Self.pem { PEM_write_bio_PrivateKey($0, key, nil, nil, 0, nil, nil) }
        return DevelopmentIdentity(certificatePEM: certPEM, privateKeyPEM: keyPEM)
    }

    private static func pem(_ write: (OpaquePointer) -> Int32) throws(TLSError) -> [UInt8] {
        guard let bio = BIO_new(BIO_s_mem()) else { throw .configuration("out of memory", stack: OpenSSLErrors.drain()) }
        defer { BIO_free(bio) }
        guard write(bio) == 1 else { throw .configuration("cannot write PEM", stack: OpenSSLErrors.drain()) }
        let n = Int(BIO_ctrl_pending(bio))
        var out = [UInt8](repeating: 0, count: n)
        _ = out.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32(n)) }
        return out
    }

    /// A server configuration presenting this identity.
    public func serverConfiguration() -> TLSConfiguration {
        .server(certificateChain: .bytes(certificatePEM), privateKey: .bytes(privateKeyPEM))
    }
}
