import Logging
import NIOCore
import SIPMessage
import SIPRegistrar
import SIPTLS
import SIPTransport

#if canImport(Glibc)
import Glibc
#endif

/// TLS set-up: the server's certificate store (files or a generated development identity)
/// and the client context for connections this server opens.
extension RegistrarServer {
    func makeTLSStore(_ config: ServerConfiguration, metrics: ServerMetrics) throws -> TLSContextStore {
        var tls: TLSConfiguration
        switch config.certificate {
        case .auto:
            var names = ["localhost", "127.0.0.1", "::1"]
            if let h = HostSystem.hostName(), !names.contains(h) { names.append(h) }
            names += config.domains.filter { !names.contains($0) }
            let identity: DevelopmentIdentity
            do {
                identity = try DevelopmentIdentity.generate(names: names)
            } catch {
                throw ConfigurationError("tls: \(error)")
            }
            logger.warning("""
                TLS uses a GENERATED DEVELOPMENT CERTIFICATE (certificate: auto). Clients that verify the server will \
                refuse it. Give --cert and --key (certs/generate.sh makes a private CA) before production use.
                """, metadata: ["tls.names": "\(names.joined(separator: ","))"])
            tls = identity.serverConfiguration()
        case .files(let cert, let key):
            tls = .server(certificateChain: .file(cert), privateKey: .file(key), passphrase: config.keyPassphrase)
        }
        tls.clientCertificates = config.clientCertificates
        if let ca = config.ca { tls.trustRoots = .file(ca) }
        do {
            // Under `optional`, a certificate that does not verify leaves the connection up without an
            // identity (digest still applies): say so once per connection, and count it.
            let logger = self.logger
            let store = try TLSContextStore(configuration: tls) { u in
                metrics.count("sip_tls_client_certificates_total", [("result", "unverified")])
                logger.notice("TLS client certificate did not verify; connection kept without an identity",
                              metadata: ["net.peer": "\(u.remote.logSafe)", "tls.subject": "\(u.certificate.subject.logSafe)",
                                         "tls.issuer": "\(u.certificate.issuer.logSafe)", "tls.sha256": "\(u.certificate.fingerprintSHA256)",
                                         "tls.error": "\(u.reason.logSafe)"])
            }
            if let c = store.context.certificate {
                logger.info("TLS certificate", metadata: ["tls.subject": "\(c.subject)", "tls.sha256": "\(c.fingerprintSHA256)",
                                                          "tls.client_certificates": "\(config.clientCertificates.rawValue)"])
            }
            return store
        } catch {
            throw ConfigurationError("tls: \(error)")
        }
    }

    /// The context for connections this server opens (to another node, to a `sips:` contact):
    /// verifies the peer against `tls.ca` when it is given (a private CA for the nodes), else nil
    /// (the transport then uses the system roots).
    func makeClientContext(_ config: ServerConfiguration) throws(ConfigurationError) -> TLSContext? {
        guard let ca = config.ca else { return nil }
        do {
            return try TLSContext(configuration: .client(trustRoots: .file(ca)))
        } catch {
            throw ConfigurationError("tls.ca \(ca): \(error)")
        }
    }
}
