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

    /// Read buffers for connections: NIO keeps each connection's read buffer for the next
    /// read, at the largest size it ever grew to, for the connection's whole life.
    static let receiveBuffers = ConnectionReadSizes()

    static func bind(transport: SIPTransportProtocol, host: String, port: Int, tls: TLS?, dispatcher: Dispatcher) async throws -> StreamLeg {
        let config = dispatcher.configuration
        let channel = try await ServerBootstrap(group: dispatcher.group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 1024)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.recvAllocator, value: StreamLeg.receiveBuffers)
            .childChannelOption(.writeBufferWaterMark,
                                value: .init(low: config.maxQueuedBytesPerConnection / 2, high: config.maxQueuedBytesPerConnection))
            .childChannelInitializer { child in
                child.eventLoop.makeCompletedFuture {
                    let tlsHandler = tls.map { TLSHandler(contextStore: $0.server) }
                    if transport.isWebSocket {
                        try StreamLeg.configureWebSocket(child, transport: transport, tlsHandler: tlsHandler, dispatcher: dispatcher)
                    } else {
                        try StreamLeg.configure(child, transport: transport, tlsHandler: tlsHandler, dispatcher: dispatcher, inbound: true)
                    }
                }
            }
            .bind(host: host, port: port).get()
        guard let local = channel.localAddress else { throw DispatcherError.unroutable("listener has no local address") }
        return StreamLeg(transport: transport, channel: channel, localAddress: local, tls: tls, dispatcher: dispatcher)
    }

    /// The shared pipeline: [TLS] → connection handler (which frames the stream).
    static func configure(_ channel: any Channel, transport: SIPTransportProtocol, tlsHandler: TLSHandler?,
                          dispatcher: Dispatcher, inbound: Bool, outboundAdmission: String? = nil) throws {
        let ops = channel.pipeline.syncOperations
        if let tlsHandler { try ops.addHandler(tlsHandler) }
        try ops.addHandler(StreamConnectionHandler(framing: SIPStreamDecoder(limits: dispatcher.configuration.parserLimits),
                                                   dispatcher: dispatcher, transport: transport, inbound: inbound,
                                                   outboundAdmission: outboundAdmission))
    }

    /// Opens a connection to a peer (TLS: verifying the server per the client context, with SNI).
    /// A connection this server opens counts against the same limits as one it accepts (in
    /// total and per remote address): past them this throws instead of connecting.
    func connect(host: String, port: Int) async throws -> any Channel {
        let transport = self.transport
        let dispatcher = self.dispatcher
        let config = dispatcher.configuration
        let exempt = config.limitExemptions.contains(host)
        switch dispatcher.connections.admit(ip: host, maxTotal: config.maxConnections,
                                            maxPerIP: exempt ? Int.max : config.maxConnectionsPerIP) {
        case .admitted:
            break
        case .totalLimit:
            dispatcher.refuse(.connectionsRefusedTotalLimit, transport, host: host, port: port, reason: "connection limit")
            throw DispatcherError.connectFailed("\(transport) \(host):\(port): connection limit reached")
        case .perIPLimit:
            dispatcher.refuse(.connectionsRefusedPerIPLimit, transport, host: host, port: port, reason: "per-IP connection limit")
            throw DispatcherError.connectFailed("\(transport) \(host):\(port): per-IP connection limit reached")
        }
        let loop = dispatcher.group.next()
        var tlsHandler: NIOLoopBoundBox<TLSHandler>?
        if transport == .tls {
            guard let clientContext = tls?.client else {
                dispatcher.connections.release(ip: host)
                throw DispatcherError.connectFailed("\(transport) \(host):\(port): no client TLS context")
            }
            // One client context for every connection; the name to verify and send as SNI is per connection.
            // Made here, off the loop (this runs in a task), and handed to the loop that runs the connection.
            tlsHandler = NIOLoopBoundBox.makeBoxSendingValue(TLSHandler(context: clientContext, serverHostname: host), eventLoop: loop)
        }
        do {
            return try await ClientBootstrap(group: loop)
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .channelOption(.recvAllocator, value: StreamLeg.receiveBuffers)
                .connectTimeout(.seconds(5))
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try StreamLeg.configure(channel, transport: transport, tlsHandler: tlsHandler?.value,
                                                dispatcher: dispatcher, inbound: false, outboundAdmission: host)
                    }
                }
                .connect(host: host, port: port).get()
        } catch {
            // Never active, so the connection handler did not take the slot over.
            dispatcher.connections.release(ip: host)
            throw DispatcherError.connectFailed("\(transport) \(host):\(port): \(error)")
        }
    }
}

/// Read sizes for a connection: 512 bytes (a REGISTER's size) to start, doubling up to
/// 64 KiB only when two reads in a row fill the buffer, halving (not below 512) after two
/// reads in a row that use at most half of it.
///
/// NIO keeps a connection's read buffer between reads, at the largest size it ever had,
/// so the size matters for every idle softphone. NIO's adaptive sizes double on one full
/// read: the first read of a TLS connection, a 517-byte ClientHello, filled 512 bytes and
/// left each idle connection with a 1 KiB buffer. A single full read is followed by the
/// read of the rest within the same wake-up; a connection busy enough to fill the buffer
/// twice in a row (a proxy sending many messages) still grows to what it needs.
struct ConnectionReadSizes: RecvByteBufferAllocator {
    static let minimum = 512
    static let maximum = 65_536
    private(set) var size = ConnectionReadSizes.minimum
    private var fullReads = 0
    private var smallReads = 0

    func buffer(allocator: ByteBufferAllocator) -> ByteBuffer { allocator.buffer(capacity: size) }

    func nextBufferSize() -> Int? { size }

    mutating func record(actualReadBytes n: Int) -> Bool {
        if n >= size {
            smallReads = 0
            fullReads += 1
            guard fullReads >= 2, size < Self.maximum else { return false }
            fullReads = 0
            size *= 2
            return true
        }
        fullReads = 0
        if n <= size / 2, size / 2 >= Self.minimum {
            smallReads += 1
            if smallReads >= 2 {
                smallReads = 0
                size /= 2
            }
        } else {
            smallReads = 0
        }
        return false
    }
}
