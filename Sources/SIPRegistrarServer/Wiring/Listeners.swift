import Logging
import NIOCore
import SIPMessage
import SIPRegistrar
import SIPTLS
import SIPTransport

#if canImport(Glibc)
import Glibc
#endif

/// Listeners: one bind per configured address, errors as one line naming the listener.
extension RegistrarServer {
    /// Binds one listener; `::` falls back to 0.0.0.0 where IPv6 is unavailable. A port in
    /// use or a bad address becomes one line naming the listener.
    func bind(_ a: ListenAddress, _ kind: String, _ body: (String) async throws -> SocketAddress) async throws -> String {
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

    func describe(_ s: SocketAddress) -> String {
        guard let ip = s.ipAddress, let port = s.port else { return "\(s)" }
        return SIPSource.hostPort(ip, port)
    }

    /// Binds every configured listener and announces each with its real address; on a failure the
    /// listeners already bound are closed again and the error names the one that failed.
    func startListeners(_ config: ServerConfiguration, dispatcher: Dispatcher, tlsStore: TLSContextStore?,
                        announce: @Sendable (String) -> Void) async throws {
        do {
            for a in config.udp { announce("listening udp \(try await bind(a, "udp") { try await dispatcher.bindUDP(host: $0, port: a.port) })") }
            for a in config.tcp { announce("listening tcp \(try await bind(a, "tcp") { try await dispatcher.bindTCP(host: $0, port: a.port) })") }
            for a in config.ws { announce("listening ws \(try await bind(a, "ws") { try await dispatcher.bindWebSocket(host: $0, port: a.port) })") }
            if let tlsStore {
                // Connections this server opens (to another node, to a sips: contact) verify the peer
                // against tls.ca when it is given (a private CA for the nodes), else the system roots.
                let clientContext = try makeClientContext(config)
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
    }
}
