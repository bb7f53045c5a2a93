import NIOPosix
import SIPMessage
import SIPTransport

/// The answer-200 dispatcher the sipp load script measures: every request gets 200 OK.
enum DispatcherServer {
    struct Answer200: SIPReceiver {
        func receive(_ request: SIPRequest, from source: SIPSource) async -> SIPReceiveOutcome {
            .respond(SIPResponse(to: request, statusCode: 200, toTag: SIPResponse.randomTag()))
        }
    }

    static func run(udpPort: Int, tcpPort: Int) async throws {
        let dispatcher = Dispatcher(configuration: TransportConfiguration())
        dispatcher.addReceiver(Answer200())
        let u = try await dispatcher.bindUDP(host: "127.0.0.1", port: udpPort)
        let t = try await dispatcher.bindTCP(host: "127.0.0.1", port: tcpPort)
        print("answer-200 dispatcher: udp \(u), tcp \(t)")
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}
