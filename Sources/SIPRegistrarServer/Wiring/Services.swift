import Logging
import ServiceLifecycle
import SIPRegistrar
import SIPTLS
import SIPTransport
import UnixSignals

/// The SIP side as a service: runs until graceful shutdown, then stops accepting and
/// closes connections. Every REGISTER answered before that was committed first.
struct SIPService: Service {
    let dispatcher: Dispatcher
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        logger.info("shutting down")
        await dispatcher.shutdown()
    }
}

/// SIGHUP: reload the certificate files (new connections get the new certificate) and
/// the users file. A file that fails to load leaves the current one in force.
struct ReloadOnHangup: Service {
    let store: TLSContextStore?
    let usersFile: String?
    let authenticator: Authenticator
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        await cancelWhenGracefulShutdown {
            for await _ in signals {
                switch store?.reload() {
                case .success(let ctx):
                    logger.notice("TLS certificate reloaded", metadata: ["tls.sha256": "\(ctx.certificate?.fingerprintSHA256 ?? "?")"])
                case .failure(let error):
                    logger.error("TLS certificate reload failed; keeping the current one", metadata: ["error": "\(error)"])
                case nil:
                    break
                }
                guard let usersFile else { continue }
                do throws(ConfigurationError) {
                    let table = try UsersFile.load(usersFile)
                    authenticator.replaceUsers(table)
                    logger.notice("users file reloaded", metadata: ["auth.users": "\(table.count)"])
                } catch {
                    logger.error("users file reload failed; keeping the current users", metadata: ["error": "\(error)"])
                }
            }
        }
    }
}
