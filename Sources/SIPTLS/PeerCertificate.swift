internal import COpenSSL
internal import CSIPTLSShims
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// What a certificate says: names, issuer, validity and fingerprint, and whether the
/// chain verified during the handshake.
public struct PeerCertificate: Sendable, Hashable {
    /// The subject's common name (CN), if it has one.
    public var subjectCommonName: String?
    /// subjectAltName DNS names.
    public var dnsNames: [String]
    /// subjectAltName URIs (`sip:alice@example.com`, `sip:example.com`).
    public var uris: [String]
    /// subjectAltName IP addresses, as text.
    public var ipAddresses: [String]
    /// The issuer's distinguished name (RFC 2253 form).
    public var issuer: String
    /// The subject's distinguished name (RFC 2253 form).
    public var subject: String
    /// Start of validity, seconds since 1970.
    public var notBefore: Int64
    /// End of validity, seconds since 1970.
    public var notAfter: Int64
    /// SHA-256 of the DER form, upper-case hex pairs separated by colons (as `openssl x509 -fingerprint -sha256`).
    public var fingerprintSHA256: String
    /// Whether the chain verified against the configured trust roots.
    public var verified: Bool
    /// Why it did not verify (OpenSSL's text, e.g. "unable to get local issuer certificate"); nil when it did
    /// or was not checked.
    public var verificationError: String?
    /// Whether the certificate has a subjectAltName extension at all.
    public var hasSubjectAltName: Bool

    /// The `sip:` / `sips:` URIs with a user part: the identities a client certificate claims
    /// (our policy for certificate-based registration; RFC 5922 covers only domains).
    public var sipIdentities: [String] {
        uris.filter { uri in
            let lower = uri.lowercased()
            return (lower.hasPrefix("sip:") || lower.hasPrefix("sips:")) && uri.contains("@")
        }
    }

    /// RFC 5922 7.1 (client side): does this server certificate identify SIP domain `domain`?
    /// `sip:` URIs without a user part count first; DNS names only when there is no such URI;
    /// the common name only when there is no subjectAltName at all. No wildcards.
    public func identifiesSIPDomain(_ domain: String) -> Bool {
        let d = domain.lowercased()
        let domainURIs = uris.compactMap { uri -> String? in
            let lower = uri.lowercased()
            guard lower.hasPrefix("sip:"), !lower.contains("@") else { return nil }
            var host = String(lower.dropFirst(4))
            if let cut = host.firstIndex(where: { $0 == ";" || $0 == ":" || $0 == "?" }) { host = String(host[..<cut]) }
            return host
        }
        if !domainURIs.isEmpty { return domainURIs.contains(d) }
        if hasSubjectAltName { return dnsNames.contains { $0.lowercased() == d } }
        return subjectCommonName?.lowercased() == d
    }

    init(x509 cert: OpaquePointer, verified: Bool) {
        var dns: [String] = []
        var uris: [String] = []
        var ips: [String] = []
        if let names = CSIPTLSShims_X509_get_subject_alt_names(cert) {
            let n = CSIPTLSShims_sk_GENERAL_NAME_num(names)
            for i in 0..<n {
                guard let gen = CSIPTLSShims_sk_GENERAL_NAME_value(names, i) else { continue }
                switch gen.pointee.type {
                case GEN_DNS:
                    if let s = Self.asn1String(gen.pointee.d.dNSName) { dns.append(s) }
                case GEN_URI:
                    if let s = Self.asn1String(gen.pointee.d.uniformResourceIdentifier) { uris.append(s) }
                case GEN_IPADD:
                    if let s = Self.ipString(gen.pointee.d.iPAddress) { ips.append(s) }
                default:
                    break
                }
            }
            CSIPTLSShims_GENERAL_NAMES_free(names)
        }
        self.dnsNames = dns
        self.uris = uris
        self.ipAddresses = ips
        self.hasSubjectAltName = CSIPTLSShims_X509_has_subject_alt_name(cert) != 0
        self.subjectCommonName = Self.commonName(X509_get_subject_name(cert))
        self.issuer = Self.distinguishedName(X509_get_issuer_name(cert))
        self.subject = Self.distinguishedName(X509_get_subject_name(cert))
        self.notBefore = Self.seconds(X509_get0_notBefore(cert))
        self.notAfter = Self.seconds(X509_get0_notAfter(cert))
        var md = [UInt8](repeating: 0, count: 32)
        var len: UInt32 = 0
        _ = md.withUnsafeMutableBufferPointer { X509_digest(cert, EVP_sha256(), $0.baseAddress, &len) }
        self.fingerprintSHA256 = md.prefix(Int(len)).map { b in
            let hex = String(b, radix: 16, uppercase: true)
            return b < 16 ? "0" + hex : hex
        }.joined(separator: ":")
        self.verified = verified
    }

    private static func asn1String(_ s: UnsafeMutablePointer<ASN1_STRING>?) -> String? {
        guard let s, let data = ASN1_STRING_get0_data(s) else { return nil }
        let n = Int(ASN1_STRING_length(s))
        return String(decoding: UnsafeBufferPointer(start: data, count: n), as: UTF8.self)
    }

    private static func ipString(_ s: UnsafeMutablePointer<ASN1_STRING>?) -> String? {
        guard let s, let data = ASN1_STRING_get0_data(s) else { return nil }
        let n = Int(ASN1_STRING_length(s))
        var out = [CChar](repeating: 0, count: 64)
        let family: Int32
        switch n {
        case 4: family = AF_INET
        case 16: family = AF_INET6
        default: return nil
        }
        guard inet_ntop(family, data, &out, socklen_t(out.count)) != nil else { return nil }
        let end = out.firstIndex(of: 0) ?? out.count
        return String(decoding: out[..<end].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func commonName(_ name: OpaquePointer?) -> String? {
        guard let name else { return nil }
        let idx = X509_NAME_get_index_by_NID(name, NID_commonName, -1)
        guard idx >= 0, let entry = X509_NAME_get_entry(name, idx), let data = X509_NAME_ENTRY_get_data(entry) else { return nil }
        var out: UnsafeMutablePointer<UInt8>?
        let n = ASN1_STRING_to_UTF8(&out, data)
        guard n >= 0, let out else { return nil }
        defer { CSIPTLSShims_OPENSSL_free(out) }
        return String(decoding: UnsafeBufferPointer(start: out, count: Int(n)), as: UTF8.self)
    }

    private static func distinguishedName(_ name: OpaquePointer?) -> String {
        guard let name, let bio = BIO_new(BIO_s_mem()) else { return "" }
        defer { BIO_free(bio) }
        _ = X509_NAME_print_ex(bio, name, 0, CSIPTLSShims_XN_FLAG_RFC2253_UTF8)
        let n = Int(BIO_ctrl_pending(bio))
        var buf = [UInt8](repeating: 0, count: n)
        _ = buf.withUnsafeMutableBytes { BIO_read(bio, $0.baseAddress, Int32(n)) }
        return String(decoding: buf, as: UTF8.self)
    }

    private static func seconds(_ t: UnsafePointer<ASN1_TIME>?) -> Int64 {
        guard let t else { return 0 }
        var tm = tm()
        guard ASN1_TIME_to_tm(t, &tm) == 1 else { return 0 }
        return Int64(timegm(&tm))
    }
}
