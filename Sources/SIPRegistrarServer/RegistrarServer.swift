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
public final class RegistrarServer: Sendable {
    public let configuration: ServerConfiguration
    let logger: Logger

    public init(configuration: ServerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Runs until SIGTERM or SIGINT. Start-up problems (a certificate, a port in use, the
    /// store) throw `ConfigurationError` with one line naming the cause. `announce` gets
    /// one line per listener with its real address, and the admin URL.
    public func run(announce: @escaping @Sendable (String) -> Void) async throws {
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

        var transportConfig = TransportConfiguration(serverHeader: "sip-registrar/\(SIPRegistrarVersion.current)")
        transportConfig.idleTimeout = .seconds(max(600, config.maxExpires + 60))
        transportConfig.maxConnectionsPerIP = security.connectionsPerSource == 0 ? Int.max : security.connectionsPerSource
        transportConfig.maxTLSHandshakesPerIPPerSecond = security.tlsHandshakesPerSource
        transportConfig.limitExemptions = authConfig.exemptSources
        transportConfig.spreadAcrossLoops = config.spreadAcrossLoops
        transportConfig.webSocket = WebSocketPolicy(allowedOrigins: config.webSocketOrigins, maxFrameSize: config.webSocketMaxFrame)
        if let a = config.advertise { transportConfig.localNames = [a.hasPrefix("[") ? String(a.dropFirst().dropLast()) : a] }
        var transportLogger = logger
        transportLogger[metadataKey: "component"] = "transport"
        let dispatcher = Dispatcher(configuration: transportConfig, logger: transportLogger)
        let clock = SystemRegistrarClock()
        let registrar: Registrar
        do {
            registrar = try Registrar(configuration: config.registrarConfiguration,
                                      store: TimedBindingStore(inner: store, metrics: metrics), clock: clock, timers: dispatcher)
        } catch {
            throw ConfigurationError(error.description)
        }
        let authenticator: Authenticator
        do {
            // Each nonce names the node that issued it; nodes sharing auth.secret_file answer each other's stale=true.
            var nodeAuthConfig = authConfig
            nodeAuthConfig.nodeName = config.nodeName ?? Self.defaultNodeName()
            nodeAuthConfig.challengesAsProxy = config.nonRegister == .proxy
            authenticator = try Authenticator(configuration: nodeAuthConfig, users: users, hashing: OpenSSLDigestHashing(), secret: secret,
                                              domains: config.domains, clock: clock,
                                              serverHeader: "sip-registrar/\(SIPRegistrarVersion.current)",
                                              observer: authenticationObserver(metrics: metrics))
        } catch {
            throw ConfigurationError("auth: \(error.description)")
        }
        let loaded = try await registrar.load()
        // Loading leaves the rows' temporary copies in malloc's free lists; give them back.
        Self.returnFreedMemory()
        // The chain: authorization (and the per-source limits), then the registrar.
        dispatcher.addReceiver(authenticator)
        dispatcher.addReceiver(registrar)
        // A connection that carries a registration stays open while the binding lives.
        dispatcher.setFlowInUse { registrar.isFlowInUse($0) }
        observe(registrar: registrar, dispatcher: dispatcher, metrics: metrics)

        do {
            for a in config.udp { announce("listening udp \(try await bind(a, "udp") { try await dispatcher.bindUDP(host: $0, port: a.port) })") }
            for a in config.tcp { announce("listening tcp \(try await bind(a, "tcp") { try await dispatcher.bindTCP(host: $0, port: a.port) })") }
            for a in config.ws { announce("listening ws \(try await bind(a, "ws") { try await dispatcher.bindWebSocket(host: $0, port: a.port) })") }
            if let tlsStore {
                // Connections this server opens (to another node, to a sips: contact) verify the peer
                // against tls.ca when it is given (a private CA for the nodes), else the system roots.
                var clientContext: TLSContext?
                if let ca = config.ca {
                    do {
                        clientContext = try TLSContext(configuration: .client(trustRoots: .file(ca)))
                    } catch {
                        throw ConfigurationError("tls.ca \(ca): \(error)")
                    }
                }
                for a in config.tls {
                    announce("listening tls \(try await bind(a, "tls") { try await dispatcher.bindTLS(host: $0, port: a.port, contexts: tlsStore, clientContext: clientContext) })")
                }
                for a in config.wss {
                    announce("listening wss \(try await bind(a, "wss") { try await dispatcher.bindWebSocket(host: $0, port: a.port, contexts: tlsStore) })")
                }
            }
        } catch {
            await dispatcher.shutdown()
            throw error
        }
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
            if adminTokenCreated {
                logger.notice("admin API token created (send it as 'Authorization: Bearer TOKEN'; sip-registrar lookup reads it)",
                              metadata: ["admin.token_file": "\(adminAccess.tokenFile)"])
            }
            let router = AdminAPI.router(registrar: registrar, dispatcher: dispatcher, metrics: metrics, localNode: stores.node,
                                         clock: clock, access: adminAccess)
            var adminLogger = logger
            adminLogger[metadataKey: "component"] = "admin"
            adminLogger.logLevel = max(logger.logLevel, .notice)
            let app = Application(router: router, configuration: .init(address: .hostname(admin.host, port: admin.port),
                                                                       serverName: "sip-registrar"),
                                   onServerRunning: { channel in
                                       let port = channel.localAddress?.port ?? admin.port
                                       let host = admin.host.contains(":") ? "[\(admin.host)]" : admin.host
                                       announce("admin http://\(host):\(port)")
                                   },
                                   logger: adminLogger)
            services.append(app)
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

    /// Binds one listener; `::` falls back to 0.0.0.0 where IPv6 is unavailable. A port in
    /// use or a bad address becomes one line naming the listener.
    private func bind(_ a: ListenAddress, _ kind: String, _ body: (String) async throws -> SocketAddress) async throws -> String {
        do {
            return describe(try await body(a.host))
        } catch let e as IOError where a.host == "::" && (e.errnoCode == EAFNOSUPPORT || e.errnoCode == EADDRNOTAVAIL) {
            return describe(try await body("0.0.0.0"))
        } catch let e as IOError {
            let reason = e.errnoCode == EADDRINUSE ? "address already in use" : String(cString: strerror(e.errnoCode))
            throw ConfigurationError("--\(kind) \(a): \(reason)")
        } catch {
            throw ConfigurationError("--\(kind) \(a): \(error)")
        }
    }

    private func describe(_ s: SocketAddress) -> String {
        guard let ip = s.ipAddress, let port = s.port else { return "\(s)" }
        return SIPSource.hostPort(ip, port)
    }

    private func makeTLSStore(_ config: ServerConfiguration, metrics: ServerMetrics) throws -> TLSContextStore {
        var tls: TLSConfiguration
        switch config.certificate {
        case .auto:
            var names = ["localhost", "127.0.0.1", "::1"]
            var host = [CChar](repeating: 0, count: 256)
            if gethostname(&host, host.count) == 0 {
                let h = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !h.isEmpty && !names.contains(h) { names.append(h) }
            }
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

    /// glibc's `malloc_trim(0)` (not in Swift's Glibc module; looked up at run time, a no-op elsewhere).
    static func returnFreedMemory() {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        typealias Trim = @convention(c) (Int) -> Int32
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
    }

    /// `HOSTNAME-PID`: unique among the nodes of one database as long as hosts are named apart.
    static func defaultNodeName() -> String {
        var host = [CChar](repeating: 0, count: 256)
        let name = gethostname(&host, host.count) == 0
            ? String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) : "node"
        return "\(name.isEmpty ? "node" : name)-\(getpid())"
    }

    /// The nonce key: from the secret file (shared by several nodes), else random per start.
    private func nonceSecret(_ security: SecuritySettings) throws(ConfigurationError) -> [UInt8] {
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

    /// Metrics for every authentication event; a log line for each limit a source meets (once per block).
    private func authenticationObserver(metrics: ServerMetrics) -> @Sendable (AuthenticationEvent) -> Void {
        let logger = self.logger
        return { event in
            switch event {
            case .challenged(_, let stale):
                metrics.count("sip_auth_challenges_total", [("stale", stale ? "true" : "false")])
            case .authenticated(let identity, let method, let source):
                metrics.count("sip_auth_success_total", [("method", method.rawValue)])
                logger.debug("authenticated", metadata: ["sip.identity": "\(identity.logSafe)", "auth.method": "\(method.rawValue)",
                                                         "net.peer": "\(source)"])
            case .failed(let reason, let user, let realm, let source):
                metrics.count("sip_auth_failures_total", [("reason", reason.rawValue)])
                logger.debug("authentication failed", metadata: ["auth.reason": "\(reason.rawValue)", "sip.user": "\(user.logSafe)",
                                                                 "sip.realm": "\(realm.logSafe)", "net.peer": "\(source)"])
            case .limited(let limit, let key, let until, let first):
                metrics.count("sip_limit_refusals_total", [("limit", limit.rawValue)])
                if first {
                    let seconds = max(0, (until - SystemRegistrarClock().nowMilliseconds() + 999) / 1000)
                    logger.warning("limit reached: requests refused", metadata: ["limit": "\(limit.rawValue)", "key": "\(key.logSafe)",
                                                                                 "seconds": "\(seconds)"])
                }
            }
        }
    }

    private func observe(registrar: Registrar, dispatcher: Dispatcher, metrics: ServerMetrics) {
        let logger = self.logger
        // Synchronous: a stream would wake another thread for every REGISTER (measured: about a
        // fifth of the CPU at 8,000 REGISTERs/s went to those wake-ups).
        registrar.observe { e in
            metrics.bindingEvent(e)
            let b = e.binding
            // Values from the request are escaped: a percent-decoded AOR may hold a line break.
            // Created, removed and expired at info; a refresh (most REGISTERs of a fleet) only at
            // debug: a million phones refreshing every 10 minutes would be 1,700 lines a second.
            let level: Logger.Level = if case .refreshed = e { .debug } else { .info }
            logger.log(level: level, "binding \(e.kind)", metadata: ["sip.aor": "\(b.aor.logSafe)", "sip.contact": "\(b.uri.logSafe)",
                                                       "sip.user_agent": "\(b.userAgent.logSafe)", "net.transport": "\(b.transport)",
                                              "net.peer": "\(b.source)", "sip.expires": "\(b.remainingSeconds(at: b.updatedAt))"])
        }
        dispatcher.observe { event in
            switch event {
            case .requestReceived(let m, let t): metrics.requestReceived(m, t)
            case .responseSent(let code, let t): metrics.responseSent(code, t)
            case .tlsHandshake(let ok, let remote, let detail):
                metrics.tlsHandshake(succeeded: ok)
                if !ok { logger.notice("TLS handshake failed", metadata: ["net.peer": "\(remote)", "tls.error": "\(detail.logSafe)"]) }
            case .connectionRefused(let t, let remote, let reason):
                // The dispatcher reports a refusal once per reason and source per minute (all are counted).
                logger.warning("connection refused", metadata: ["net.transport": "\(t)", "net.peer": "\(remote)", "reason": "\(reason.logSafe)"])
            case .dropped(let reason, let remote):
                logger.notice("message dropped", metadata: ["net.peer": "\(remote)", "reason": "\(reason.logSafe)"])
            case .connectionOpened, .connectionClosed:
                break
            }
        }
    }
}

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
