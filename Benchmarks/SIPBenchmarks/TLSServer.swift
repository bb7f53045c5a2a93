import NIOCore
import NIOPosix
import SIPTLS

/// A TLS server through `TLSHandler` for the TLS benchmark: it holds every connection
/// open and answers each received chunk with the same bytes (s_time's GET gets a reply).
enum TLSBenchServer {
    final class Echo: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        typealias OutboundOut = ByteBuffer
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.writeAndFlush(data, promise: nil)
        }
        func errorCaught(context: ChannelHandlerContext, error: any Error) { context.close(promise: nil) }
    }

    static func run(port: Int, cert: String, key: String) async throws {
        let store = try TLSContextStore(configuration: .server(certificateChain: .file(cert), privateKey: .file(key)))
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 4096)
            .childChannelInitializer { ch in
                ch.eventLoop.makeCompletedFuture {
                    try ch.pipeline.syncOperations.addHandlers([TLSHandler(contextStore: store), Echo()])
                }
            }
            .bind(host: "127.0.0.1", port: port).get()
        print("TLS bench server on \(channel.localAddress.map { "\($0)" } ?? "?")")
        try await channel.closeFuture.get()
    }
}
