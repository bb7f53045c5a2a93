import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import SIPRegistrar
import SIPTransport

extension RegistrarServer {
    /// The admin HTTP API as a service (Hummingbird), its log quieter than the SIP side's; announces
    /// its URL once it listens.
    func adminService(_ admin: ListenAddress, access adminAccess: AdminAPI.Access, created adminTokenCreated: Bool,
                      registrar: Registrar, dispatcher: Dispatcher, metrics: ServerMetrics, localNode: String?,
                      clock: SystemRegistrarClock, announce: @escaping @Sendable (String) -> Void) -> any Service {
        if adminTokenCreated {
            logger.notice("admin API token created (send it as 'Authorization: Bearer TOKEN'; sip-registrar lookup reads it)",
                          metadata: ["admin.token_file": "\(adminAccess.tokenFile)"])
        }
        let router = AdminAPI.router(registrar: registrar, dispatcher: dispatcher, metrics: metrics, localNode: localNode,
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
        return app
    }
}
