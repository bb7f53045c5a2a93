import Logging
import NIOCore
import NIOPosix
import SIPMessage

/// A UDP listener: one datagram channel per event loop bound to the same port with
/// SO_REUSEPORT, vector reads, and a receive buffer sized so that no accepted datagram
/// is cut (NIO's default of 2048 bytes, and vector reads slicing it, truncate silently).
final class UDPLeg: Sendable {
    let channels: [any Channel]
    let localAddress: SocketAddress
    /// Per channel: whether a flush is already queued on its event loop. Answers written during
    /// one pass of the loop leave in one `sendmmsg` instead of one `sendmsg` each.
    private let flushQueued: [ObjectIdentifier: NIOLoopBoundBox<Bool>]

    private init(channels: [any Channel], localAddress: SocketAddress) {
        self.channels = channels
        self.localAddress = localAddress
        var queued: [ObjectIdentifier: NIOLoopBoundBox<Bool>] = [:]
        for c in channels { queued[ObjectIdentifier(c)] = NIOLoopBoundBox.makeBoxSendingValue(false, eventLoop: c.eventLoop) }
        self.flushQueued = queued
    }

    static func bind(host: String, port: Int, dispatcher: Dispatcher) async throws -> UDPLeg {
        let config = dispatcher.configuration
        let vector = max(1, config.udpVectorReadCount)
        // Each slice holds one more byte than the largest message: a full slice means "too large".
        let slice = config.maxMessageBytes + 1
        func bootstrap(_ loop: any EventLoop) -> DatagramBootstrap {
            DatagramBootstrap(group: loop)
                .channelOption(.socketOption(.so_reuseaddr), value: 1)
                .channelOption(.socketOption(.init(rawValue: SO_REUSEPORT)), value: 1)
                .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: slice * vector))
                .channelOption(.datagramVectorReadMessageCount, value: vector)
                .channelOption(.maxMessagesPerRead, value: UInt(UDPInboundHandler.readsPerPass))
                .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            UDPInboundHandler(dispatcher: dispatcher, sliceSize: slice, vector: vector))
                    }
                }
        }
        var loops: [any EventLoop] = []
        for loop in dispatcher.group.makeIterator() { loops.append(loop) }
        guard let first = loops.first else { throw DispatcherError.unroutable("no event loop") }
        let firstChannel = try await bootstrap(first).bind(host: host, port: port).get()
        guard let bound = firstChannel.localAddress, let boundPort = bound.port else {
            throw DispatcherError.unroutable("UDP socket has no local address")
        }
        var channels: [any Channel] = [firstChannel]
        for loop in loops.dropFirst() {
            if let c = try? await bootstrap(loop).bind(host: host, port: boundPort).get() { channels.append(c) }
        }
        return UDPLeg(channels: channels, localAddress: bound)
    }

    /// Sends a datagram through one of the leg's sockets (its source port is the leg's port).
    func send(_ bytes: [UInt8], to address: SocketAddress) {
        guard let channel = channels.first(where: { $0.eventLoop.inEventLoop }) ?? channels.first else { return }
        let envelope = AddressedEnvelope(remoteAddress: address, data: channel.allocator.buffer(bytes: bytes))
        guard channel.eventLoop.inEventLoop, let queued = flushQueued[ObjectIdentifier(channel)] else {
            channel.writeAndFlush(envelope, promise: nil)
            return
        }
        channel.write(envelope, promise: nil)
        if !queued.value {
            queued.value = true
            // Runs after the request tasks already queued on this loop: their answers join this flush.
            channel.eventLoop.execute {
                queued.value = false
                channel.flush()
            }
        }
    }
}

/// Reads datagrams on its channel's event loop; it keeps the text of the local address and of
/// the last peer's address, so that a busy peer's datagrams do not each format both again.
final class UDPInboundHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    let dispatcher: Dispatcher
    let sliceSize: Int
    private var local: (host: String?, port: Int?)?
    private var lastPeer: (address: SocketAddress, host: String)?
    /// A pass of the loop reads the socket at most this many times (`vector` datagrams each).
    static let readsPerPass = 4
    private var backlog: BacklogMeter

    init(dispatcher: Dispatcher, sliceSize: Int, vector: Int) {
        self.dispatcher = dispatcher
        self.sliceSize = sliceSize
        self.backlog = BacklogMeter(fullPass: Self.readsPerPass * max(1, vector))
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        backlog.passEnded()
        context.fireChannelReadComplete()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        backlog.message()
        guard let port = envelope.remoteAddress.port, let host = peerHost(envelope.remoteAddress) else { return }
        if envelope.data.readableBytes >= sliceSize {
            // Possibly truncated: larger than any message we accept.
            dispatcher.count(.parseErrors)
            dispatcher.notify(.dropped(reason: "datagram larger than \(sliceSize - 1) bytes", remote: "\(host):\(port)"))
            return
        }
        let local = self.local ?? {
            let address = context.channel.localAddress
            let text = (host: address?.ipAddress, port: address?.port)
            self.local = text
            return text
        }()
        let source = SIPSource(transport: .udp, remoteHost: host, remotePort: port, localHost: local.host,
                               localPort: local.port)
        dispatcher.handleInbound(envelope.data, source: source, loop: context.eventLoop, readerIsBehind: backlog.isBehind)
    }

    /// The peer's address as text; the last peer's is kept (one busy peer sends from one address).
    private func peerHost(_ address: SocketAddress) -> String? {
        if let last = lastPeer, last.address == address { return last.host }
        guard let host = address.ipAddress else { return nil }
        lastPeer = (address, host)
        return host
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // ICMP errors and the like on a datagram socket are not fatal to the listener.
        dispatcher.logger.debug("UDP socket error", metadata: ["error": "\(error)"])
    }
}
