import Logging
import SIPRegistrar
import SIPTransport

extension RegistrarServer {
    /// The dispatcher with the transport settings the configuration implies: idle timeout past the
    /// longest registration, the per-source connection and handshake limits and their exemptions,
    /// loop spreading, the WebSocket policy and the advertised name.
    func makeDispatcher(_ config: ServerConfiguration, security: SecuritySettings,
                        authConfig: AuthenticationConfiguration) -> Dispatcher {
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
        return Dispatcher(configuration: transportConfig, logger: transportLogger)
    }
}
