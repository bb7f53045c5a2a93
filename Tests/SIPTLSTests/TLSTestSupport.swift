import Foundation
import NIOCore
import NIOEmbedded
import NIOTLS
@testable import SIPTLS
import SIPTestSupport
import Testing

/// Certificates made once per test run by the project's own certs/generate.sh.
enum TestCerts {
    static func generate(_ extra: [String]) -> TestCertificates {
        guard let set = try? TestCertificates.make(prefix: "siptls", clients: ["alice", "mallory"], extra: extra) else {
            preconditionFailure("certs/generate.sh failed")
        }
        return set
    }

    static let ec: TestCertificates = generate([])
    static let rsa: TestCertificates = generate(["--rsa"])
    /// A second, unrelated CA and server certificate.
    static let other: TestCertificates = generate(["--domain", "other.example"])
}

func serverConfig(_ set: TestCertificates = TestCerts.ec, clientCerts: ClientCertificateMode = .none) -> TLSConfiguration {
    .server(certificateChain: .file(set.serverCert), privateKey: .file(set.serverKey), clientCertificates: clientCerts,
            trustRoots: clientCerts == .none ? nil : .file(set.ca))
}

/// `clientSet`: where the client's own certificate comes from (another CA's, to be refused).
func clientConfig(_ set: TestCertificates = TestCerts.ec, hostname: String? = "localhost", user: String? = nil,
                  clientSet: TestCertificates? = nil) -> TLSConfiguration {
    let own = clientSet ?? set
    return .client(serverHostname: hostname, trustRoots: .file(set.ca), verifyServer: true,
                   certificateChain: user.map { .file(own.cert($0)) }, privateKey: user.map { .file(own.key($0)) })
}

/// Records what reaches the top of a pipeline.
final class Recorder: ChannelInboundHandler, @unchecked Sendable {
    // Safety: used only on the EmbeddedChannel's (single) thread in these tests.
    typealias InboundIn = ByteBuffer
    var received: [UInt8] = []
    var errors: [any Error] = []
    var events: [Any] = []
    var info: TLSConnectionInfo?
    var handshakes = 0
    var inactive = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        received += b.readBytes(length: b.readableBytes) ?? []
    }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        events.append(event)
        if let e = event as? TLSUserEvent, case .handshakeCompleted = e { handshakes += 1 }
        if let e = event as? TLSEstablishedEvent { info = e.info }
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) { errors.append(error) }
    func channelInactive(context: ChannelHandlerContext) { inactive = true }

    var tlsErrors: [TLSError] { errors.compactMap { $0 as? TLSError } }
    var text: String { String(decoding: received, as: UTF8.self) }
}

/// A client and a server EmbeddedChannel joined back to back in memory.
final class Pair {
    let client = EmbeddedChannel()
    let server = EmbeddedChannel()
    let clientRecorder = Recorder()
    let serverRecorder = Recorder()
    let clientHandler: TLSHandler
    let serverHandler: TLSHandler

    init(server serverContext: TLSContext, client clientContext: TLSContext, hostname: String? = nil,
         resuming: TLSSession? = nil) throws {
        serverHandler = TLSHandler(context: serverContext)
        clientHandler = TLSHandler(context: clientContext, serverHostname: hostname, resuming: resuming)
        try server.pipeline.syncOperations.addHandlers([serverHandler, serverRecorder])
        try client.pipeline.syncOperations.addHandlers([clientHandler, clientRecorder])
    }

    deinit {
        // Finishing breaks the pipelines' reference cycles, so the leak check sees only real leaks.
        // (close, then let the close_notify timer run out: `finish()` would wait on an embedded loop forever).
        for channel in [client, server] {
            _ = channel.close()
            channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        }
    }

    /// A server handler on a store (which takes its context when the channel becomes active).
    init(serverStore: TLSContextStore, client clientContext: TLSContext) throws {
        serverHandler = TLSHandler(contextStore: serverStore)
        clientHandler = TLSHandler(context: clientContext)
        try server.pipeline.syncOperations.addHandlers([serverHandler, serverRecorder])
        try client.pipeline.syncOperations.addHandlers([clientHandler, clientRecorder])
    }

    convenience init(server: TLSConfiguration, client: TLSConfiguration) throws {
        try self.init(server: try TLSContext(configuration: server), client: try TLSContext(configuration: client))
    }

    func connect() throws {
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 5061)
        try server.connect(to: address).wait()
        try client.connect(to: address).wait()
        interact()
    }

    /// Moves bytes both ways until neither side has anything to send.
    func interact(maxRounds: Int = 1000) {
        for _ in 0..<maxRounds {
            var moved = false
            while let data = try? client.readOutbound(as: ByteBuffer.self) {
                moved = true
                if server.isActive { try? server.writeInbound(data) }
            }
            while let data = try? server.readOutbound(as: ByteBuffer.self) {
                moved = true
                if client.isActive { try? client.writeInbound(data) }
            }
            if !moved { return }
        }
    }

    /// Ciphertext the client has produced, without delivering it.
    func takeClientOutput() -> [ByteBuffer] {
        var out: [ByteBuffer] = []
        while let data = try? client.readOutbound(as: ByteBuffer.self) { out.append(data) }
        return out
    }

    func send(fromClient text: String) {
        client.writeAndFlush(ByteBuffer(string: text), promise: nil)
        interact()
    }

    func send(fromServer text: String) {
        server.writeAndFlush(ByteBuffer(string: text), promise: nil)
        interact()
    }
}
