import Logging
import NIOCore
import SIPMessage
import SIPRegistrar
import SIPTLS
import SIPTransport

#if canImport(Glibc)
import Glibc
#endif

/// Authentication set-up: the nonce key and the authenticator.
extension RegistrarServer {
    /// The nonce key: from the secret file (shared by several nodes), else random per start.
    func nonceSecret(_ security: SecuritySettings) throws(ConfigurationError) -> [UInt8] {
        if let path = security.secretFile {
            guard let text = ConfigurationLoader.readFile(path) else { throw ConfigurationError("\(path): cannot read the auth secret file") }
            let bytes = Array(text.utf8.filter { $0 != 0x0a && $0 != 0x0d })
            guard bytes.count >= 16 else { throw ConfigurationError("\(path): the auth secret must be at least 16 characters") }
            return bytes
        }
        do {
            return try OpenSSLHashing.randomBytes(32)
        } catch {
            throw ConfigurationError("auth: \(error)")
        }
    }

    /// The authenticator: digest and certificate checks and the per-source limits, with nonces
    /// that name this node; challenges as a proxy (407) when the server proxies.
    func makeAuthenticator(_ config: ServerConfiguration, authConfig: AuthenticationConfiguration, users: UserTable,
                           secret: [UInt8], clock: SystemRegistrarClock, metrics: ServerMetrics) throws(ConfigurationError) -> Authenticator {
        do {
            // Each nonce names the node that issued it; nodes sharing auth.secret_file answer each other's stale=true.
            var nodeAuthConfig = authConfig
            nodeAuthConfig.nodeName = config.resolvedNodeName
            nodeAuthConfig.challengesAsProxy = config.nonRegister == .proxy
            return try Authenticator(configuration: nodeAuthConfig, users: users, hashing: OpenSSLDigestHashing(), secret: secret,
                                              domains: config.domains, clock: clock,
                                              serverHeader: "sip-registrar/\(SIPRegistrarVersion.current)",
                                              observer: authenticationObserver(metrics: metrics))
        } catch {
            throw ConfigurationError("auth: \(error.description)")
        }
    }
}
