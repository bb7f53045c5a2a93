import NIOCore
import NIOPosix
import NIOTLS
import SIPMessage
import SIPTLS

/// A TCP listener, and with TLS set, a TLS listener: the same pipeline with
/// `SIPTLS.TLSHandler` in front (a decorator: everything above TLS is shared).
/// Connections this server opens use the same pipeline.
final class StreamLeg: Sendable {
    struct TLS: Sendable {
        var server: TLSContextStore
        var client: TLSContext?
    }

    let transport: SIPTransportProtocol
    let channel: any Channel
    let localAddress: SocketAddress
    let tls: TLS?
    let dispatcher: Dispatcher

    private init(transport: SIPTransportProtocol, channel: any Channel, localAddress: SocketAddress, tls: TLS?, dispatcher: Dispatcher) {
        self.transport = transport
        self.channel = channel
        self.localAddress = localAddress
        self.tls = tls
        self.dispatcher = dispatcher
    }

    static func bind(transport: SIPTransportProtocol, host: String, port: Int, tls: TLS?, dispatcher: Dispatcher) async throws -> StreamLeg {
        let config = dispatcher.configuration
        let channel = try await ServerBootstrap(group: dispatcher.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.writeBufferWaterMark,
                                value: .init(low: config.maxQueuedBytesPerConnection / 2, high: config.maxQueuedBytesPerConnection))
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    try StreamLeg.configure(child, transport: transport, tlsHandler: tls.map { TLSHandler(contextStore: $0.server) },
                                            dispatcher: dispatcher, inbound: true)
                }
            }
            .bind(host: host, port: port).get()
        guard let local = channel.localAddress else { throw DispatcherError.unroutable("listener has no local address") }
        return StreamLeg(transport: transport, channel: channel, localAddress: local, tls: tls, dispatcher: dispatcher)
    }

    /// The shared pipeline: [TLS] → framing → connection handler.
    static func configure(_ channel: any Channel, transport: SIPTransportProtocol, tlsHandler: TLSHandler?,
                          dispatcher: Dispatcher, inbound: Bool) throws {
        let ops = channel.pipeline.syncOperations
        if let tlsHandler { try ops.addHandler(tlsHandler) }
        let limits = dispatcher.configuration.parserLimits
        try ops.addHandler(ByteToMessageHandler(SIPStreamDecoder(limits: limits),
                                                maximumBufferSize: dispatcher.configuration.maxMessageBytes * 2))
        try ops.addHandler(StreamConnectionHandler(dispatcher: dispatcher, transport: transport, inbound: inbound))
    }

    /// Opens a connection to a peer (TLS: verifying the server per the client context, with SNI).
    func connect(host: String, port: Int) async throws -> any Channel {
        let transport = self.transport
        let dispatcher = self.dispatcher
        var handler: TLSHandler?
        if transport == .tls {
            let clientContext: TLSContext
            if let c = tls?.client {
                clientContext = c
            } else {
                clientContext = try TLSContext(configuration: .client(serverHostname: host))
            }
            handler = TLSHandler(context: clientContext, serverHostname: host)
        }
        let tlsHandler = handler.map { NIOLoopBoundBox($0, eventLoop: dispatcher.group.next()) }
        let loop = tlsHandler?.eventLoop ?? dispatcher.group.next()
        do {
            return try await ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connectTimeout(.seconds(5))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try StreamLeg.configure(channel, transport: transport, tlsHandler: tlsHandler?.value,
                                                dispatcher: dispatcher, inbound: false)
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            throw DispatcherError.connectFailed("\(transport) \(host):\(port): \(error)")
        }
    }
}
