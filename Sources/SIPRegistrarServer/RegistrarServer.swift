import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import SIPMessage
import SIPRegistrar
import SIPTLS
import SIPTransport
import UnixSignals

#if canImport(Glibc)
import Glibc
#endif

/// The ready-made server: transport legs, the registrar, the store, the admin API,
/// metrics and signals (SIGTERM/SIGINT: stop and exit 0; SIGHUP: reload certificates).
package final class RegistrarServer: Sendable {
    package let configuration: ServerConfiguration
    let logger: Logger

    package init(configuration: ServerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs until SIGTERM or SIGINT. Start-up problems (a certificate, a port in use, the
    /// store) throw `ConfigurationError` with one line naming the cause. `announce` gets
    /// one line per listener with its real address, and the admin URL.
    package func run(announce: @escaping @Sendable (String) -> Void) async throws {
        let config = configuration
        let metrics = ServerMetrics()

        // TLS first: a bad certificate must stop start-up before anything listens.
        var tlsStore: TLSContextStore?
        if !config.tls.isEmpty || !config.wss.isEmpty {
            tlsStore = try makeTLSStore(config, metrics: metrics)
        }

        let stores = try await StoreFactory.make(config, metrics: metrics, logger: logger)
        defer { stores.close() }
        let store = stores.store

        // The admin API's token: read, or made at the first start, before anything listens.
        var adminAccess: AdminAPI.Access?
        var adminTokenCreated = false
        if let admin = config.admin {
            let path = config.resolvedAdminTokenFile
            let (token, created) = try AdminToken.loadOrCreate(path: path)
            adminAccess = AdminAPI.Access(token: token, tokenFile: path, adminHost: admin.host)
            adminTokenCreated = created
        }

        // Authentication: the users file and the nonce key are read before anything listens.
        let security = config.security
        let authConfig = try security.authenticationConfiguration()
        let users = try security.users.map { path throws(ConfigurationError) in try UsersFile.load(path) } ?? UserTable()
        let secret = try nonceSecret(security)

        let dispatcher = makeDispatcher(config, security: security, authConfig: authConfig)
        let clock = SystemRegistrarClock()
        let registrar: Registrar
        do {
            registrar = try Registrar(configuration: config.registrarConfiguration,
                                      store: TimedBindingStore(inner: store, metrics: metrics), clock: clock, timers: dispatcher)
        } catch {
            throw ConfigurationError(error.description)
        }
        let authenticator = try makeAuthenticator(config, authConfig: authConfig, users: users, secret: secret, clock: clock,
                                                  metrics: metrics)
        let loaded = try await registrar.load()
        // Loading leaves the rows' temporary copies in malloc's free lists; give them back.
        HostSystem.returnFreedMemory()
        // The chain: authorization (and the per-source limits), then the registrar.
        dispatcher.addReceiver(authenticator)
        dispatcher.addReceiver(registrar)
        // A connection that carries a registration stays open while the binding lives.
        dispatcher.setFlowInUse { registrar.isFlowInUse($0) }
        observe(registrar: registrar, dispatcher: dispatcher, metrics: metrics)

        try await startListeners(config, dispatcher: dispatcher, tlsStore: tlsStore, announce: announce)
        let directory = stores.directory
        if config.nonRegister == .proxy {
            // Requests for registered users are proxied over their flows (RFC 3261 16).
            let proxy = makeProxy(dispatcher: dispatcher, registrar: registrar, secret: secret, metrics: metrics,
                                  localNode: stores.node, directory: directory)
            dispatcher.setForwarder(proxy)
            // A request another node forwarded here names one of our flows in a Route it signed
            // with the shared key: it was authenticated there.
            authenticator.setTrustedRequest { proxy.carriesOwnFlowToken($0) }
        }

        // Logged only now, so that a start-up failure is the single line a user sees.
        logger.info("bindings loaded", metadata: ["store": "\(config.store)", "sip.bindings": "\(loaded)"])
        if authConfig.mode == .off {
            let also = authConfig.domainModes.isEmpty ? "" : " (except the domains with their own auth mode)"
            logger.warning("authentication is OFF: anyone can register any address\(also); give --users FILE (sip-registrar passwd makes one)")
        } else {
            logger.info("authentication", metadata: ["auth.mode": "\(authConfig.mode.rawValue)", "auth.users": "\(users.count)"])
        }
        var services: [any Service] = [SIPService(dispatcher: dispatcher, logger: logger)]
        if let admin = config.admin, let adminAccess {
            services.append(adminService(admin, access: adminAccess, created: adminTokenCreated, registrar: registrar,
                                         dispatcher: dispatcher, metrics: metrics, localNode: stores.node, clock: clock,
                                         announce: announce))
        }
        services += stores.services(registrar)
        if let node = stores.node {
            logger.info("shared store", metadata: ["store.node": "\(node)"])
        }
        services.append(ReloadOnHangup(store: tlsStore, usersFile: security.users, authenticator: authenticator, logger: logger))
        let group = ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint],
                                                      logger: logger))
        do {
            try await group.run()
        } catch {
            throw ConfigurationError("\(error)")
        }
        logger.info("stopped", metadata: ["sip.bindings": "\(registrar.bindingCount)"])
    }
}
