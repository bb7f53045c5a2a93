import Logging
import NIOCore
import NIOTLS
import SIPMessage
import SIPTLS

/// The top of a TCP/TLS connection's pipeline: frames messages (`Framing`: the stream
/// decoder on TCP and TLS, nothing over WebSocket), registers the flow, answers CRLF
/// keep-alives, hands messages to the dispatcher, answers framing errors with 400
/// and closes, and enforces the idle timeouts and limits.
final class StreamConnectionHandler<Framing: SIPInboundFraming>: ChannelInboundHandler {
    typealias InboundIn = Framing.Input
    typealias OutboundOut = ByteBuffer

    private var framing: Framing
    private let dispatcher: Dispatcher
    private let transport: SIPTransportProtocol
    private let inbound: Bool
    private var flowID: UInt64 = 0
    private var source: SIPSource?
    /// The key of the connection-limit slot this connection holds, released when it closes:
    /// for a connection this server opens, the slot taken before connecting (see
    /// `StreamLeg.connect`); for one it accepts, the slot taken when it became active.
    private var admittedIP: String?
    private var sawValidMessage = false
    private var lastActivity = NIODeadline.now()
    /// On the dispatcher's timer wheel: an entry there costs about half of an NIO scheduled
    /// task with its promise, and every idle connection carries one for its whole life.
    private var idleTimer: WheelTimer?
    /// Read passes that each hand on this many messages, several in a row, mean a peer (a busy
    /// proxy on one connection) sends more than this loop works off: then others help.
    private var backlog = BacklogMeter(fullPass: 32)

    /// - Parameter outboundAdmission: for a connection this server opens, the key of the
    ///   connection-limit slot already taken for it (see `StreamLeg.connect`).
    init(framing: Framing, dispatcher: Dispatcher, transport: SIPTransportProtocol, inbound: Bool, outboundAdmission: String? = nil) {
        self.framing = framing
        self.dispatcher = dispatcher
        self.transport = transport
        self.inbound = inbound
        self.admittedIP = inbound ? nil : outboundAdmission
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { activate(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        activate(context: context)
        context.fireChannelActive()
    }

    private func activate(context: ChannelHandlerContext) {
        guard source == nil, let remote = context.channel.remoteAddress, let host = remote.ipAddress, let port = remote.port else { return }
        let config = dispatcher.configuration
        if inbound {
            guard dispatcher.admitInbound(transport, host: host, port: port) else {
                context.close(promise: nil)
                return
            }
            admittedIP = host
        }
        flowID = dispatcher.connections.makeID()
        let local = context.channel.localAddress
        source = SIPSource(transport: transport, remoteHost: host, remotePort: port, localHost: local?.ipAddress,
                           localPort: local?.port, flowID: flowID)
        dispatcher.connections.register(.init(id: flowID, channel: context.channel, transport: transport, remoteHost: host,
                                              remotePort: port))
        dispatcher.notify(.connectionOpened(transport, remote: "\(host):\(port)"))
        scheduleIdleCheck(context: context, after: config.idleTimeoutBeforeFirstMessage)
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        if let source {
            dispatcher.connections.remove(flowID)
            dispatcher.notify(.connectionClosed(transport, remote: source.remoteAddress))
            dispatcher.forwarder?.flowClosed(flowID)
        }
        // Only an activated connection took its slot over (before that, whoever opened it holds it).
        if source != nil, let ip = admittedIP {
            dispatcher.connections.release(ip: ip)
            admittedIP = nil
        }
        context.fireChannelInactive()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let established = event as? TLSEstablishedEvent {
            let peer = established.info.peerCertificate.map {
                SIPTLSPeerIdentity(sipURIs: $0.sipIdentities, dnsNames: $0.dnsNames, commonName: $0.subjectCommonName,
                                   fingerprintSHA256: $0.fingerprintSHA256, verified: $0.verified)
            }
            // Only a verified certificate says anything about who the peer is.
            let verifiedPeer = peer.flatMap { $0.verified ? $0 : nil }
            source?.tlsPeer = verifiedPeer
            dispatcher.notify(.tlsHandshake(succeeded: true, remote: source?.remoteAddress ?? "?",
                                            detail: "\(established.info.version?.rawValue ?? "?") \(established.info.cipher ?? "?")"))
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard source != nil else { return }
        lastActivity = .now()
        framing.append(unwrapInboundIn(data))
        // One item at a time: handling one may close the connection or re-enter this handler.
        while let item = framing.next() {
            guard let source, context.channel.isActive else { return }
            handle(item, source: source, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        backlog.passEnded()
        context.fireChannelReadComplete()
    }

    private func handle(_ item: SIPStreamItem, source: SIPSource, context: ChannelHandlerContext) {
        switch item {
        case .ping:
            dispatcher.count(.keepAlivePings)
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(string: "\r\n")), promise: nil)
        case .message(let bytes):
            sawValidMessage = true
            backlog.message()
            dispatcher.handleInbound(bytes, source: source, loop: context.eventLoop, readerIsBehind: backlog.isBehind)
        case .framingError(let error, let head):
            dispatcher.count(.framingErrors)
            // Answer from whatever headers the head holds, then close (the stream is lost).
            var parseError = error
            do {
                _ = try dispatcher.parser.parse(head)
            } catch {
                parseError.partialHeaders = error.partialHeaders
                parseError.isRequest = error.isRequest
            }
            if let response = SIPResponse.answering(headers: parseError.partialHeaders, error.statusCode,
                                                    reason: error.reasonPhrase, server: dispatcher.configuration.serverHeader) {
                let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: response.serialized())))
                    .whenComplete { _ in bound.value.close(promise: nil) }
            } else {
                context.close(promise: nil)
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        let peer = source?.remoteAddress ?? context.channel.remoteAddress.map { "\($0)" } ?? "?"
        if let tls = error as? TLSError {
            switch tls {
            case .uncleanShutdown:
                // Harmless at a SIP message boundary: the framing drops a half message.
                dispatcher.logger.debug("TLS connection ended without close_notify", metadata: ["net.peer": "\(peer)"])
                return
            case .handshakeFailed, .eofDuringHandshake, .handshakeTimeout:
                dispatcher.notify(.tlsHandshake(succeeded: false, remote: peer, detail: tls.description))
            default:
                break
            }
            dispatcher.logger.debug("TLS error", metadata: ["net.peer": "\(peer)", "error": "\(tls)"])
        } else {
            dispatcher.logger.debug("connection error", metadata: ["net.peer": "\(peer)", "error": "\(error)"])
        }
        context.close(promise: nil)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        // The peer does not read: more than the cap is queued. Close rather than grow.
        if !context.channel.isWritable {
            dispatcher.count(.connectionsClosedStuck)
            context.close(promise: nil)
        }
        context.fireChannelWritabilityChanged()
    }

    private func scheduleIdleCheck(context: ChannelHandlerContext, after delay: Duration) {
        idleTimer?.cancel()
        let loop = context.eventLoop
        let bound = NIOLoopBound((self, context), eventLoop: loop)
        idleTimer = dispatcher.scheduleOnWheel(after: delay) {
            // The wheel of the loop that armed it fires on that loop; hop there if not.
            if loop.inEventLoop {
                let (handler, context) = bound.value
                handler.idleCheck(context: context)
            } else {
                loop.execute {
                    let (handler, context) = bound.value
                    handler.idleCheck(context: context)
                }
            }
        }
    }

    private func idleCheck(context: ChannelHandlerContext) {
        let config = dispatcher.configuration
        guard sawValidMessage else {
            dispatcher.count(.connectionsClosedIdle)
            context.close(promise: nil)
            return
        }
        let idleFor = NIODeadline.now() - lastActivity
        let limit = TimeAmount.nanoseconds(config.idleTimeout.nanoseconds)
        if idleFor >= limit && !dispatcher.isFlowInUse(flowID) {
            dispatcher.count(.connectionsClosedIdle)
            context.close(promise: nil)
            return
        }
        let remaining = idleFor >= limit ? limit : limit - idleFor
        scheduleIdleCheck(context: context, after: .nanoseconds(max(remaining.nanoseconds, 1_000_000_000)))
    }
}

@available(*, unavailable)
extension StreamConnectionHandler: Sendable {}
