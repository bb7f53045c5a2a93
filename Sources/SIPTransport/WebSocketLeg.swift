import NIOCore
import NIOHTTP1
import NIOWebSocket
import SIPMessage
import SIPTLS

/// What a WebSocket leg accepts (RFC 7118, RFC 6455).
public struct WebSocketPolicy: Sendable, Hashable {
    /// `Origin` values allowed to connect (compared case-insensitively, e.g.
    /// `https://phone.example.com`); empty: any origin, and requests without one.
    public var allowedOrigins: [String]
    /// The largest single frame accepted; a SIP message may span several (fragmented)
    /// frames up to the transport's message size limit.
    public var maxFrameSize: Int

    /// Any origin and 64 KiB frames unless told otherwise.
    public init(allowedOrigins: [String] = [], maxFrameSize: Int = 65_536) {
        self.allowedOrigins = allowedOrigins
        self.maxFrameSize = maxFrameSize
    }

    /// Why an upgrade request is refused; nil when it is accepted.
    func refusal(_ head: HTTPRequestHead) -> (status: HTTPResponseStatus, reason: String)? {
        let upgrade = head.headers["upgrade"].joined(separator: ",").lowercased()
        guard upgrade.contains("websocket") else {
            return (.upgradeRequired, "this is a SIP WebSocket endpoint (RFC 7118): send an Upgrade: websocket request")
        }
        // RFC 7118 4: the subprotocol is "sip"; a handshake that does not offer it is refused.
        let offered = head.headers[canonicalForm: "sec-websocket-protocol"].map { $0.trimmingSpaces().lowercased() }
        guard offered.contains("sip") else {
            return (.badRequest, "the WebSocket subprotocol 'sip' is required (Sec-WebSocket-Protocol: sip)")
        }
        if !allowedOrigins.isEmpty {
            let origin = head.headers.first(name: "origin")?.lowercased() ?? ""
            guard allowedOrigins.contains(where: { $0.lowercased() == origin }) else {
                return (.forbidden, "Origin not allowed")
            }
        }
        return nil
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var s = self
        while s.first == " " || s.first == "\t" { s.removeFirst() }
        while s.last == " " || s.last == "\t" { s.removeLast() }
        return s
    }
}

extension StreamLeg {
    /// The WebSocket pipeline (RFC 7118): [TLS] → gate (connection limits, handshake time-out)
    /// → HTTP/1.1 with the WebSocket upgrader → after the upgrade: frame aggregation (a
    /// fragmented message), SIP-over-WebSocket framing (one message per text or binary
    /// message), and the same connection handler as TCP and TLS.
    static func configureWebSocket(_ channel: any Channel, transport: SIPTransportProtocol, tlsHandler: TLSHandler?,
                                   dispatcher: Dispatcher) throws {
        let ops = channel.pipeline.syncOperations
        if let tlsHandler { try ops.addHandler(tlsHandler) }
        try ops.addHandler(WebSocketGate(dispatcher: dispatcher, transport: transport))
        let policy = dispatcher.configuration.webSocket
        let maxMessage = dispatcher.configuration.maxMessageBytes
        let upgrader = NIOWebSocketServerUpgrader(
            maxFrameSize: max(125, policy.maxFrameSize), automaticErrorHandling: true,
            shouldUpgrade: { channel, head in
                guard policy.refusal(head) == nil else { return channel.eventLoop.makeSucceededFuture(nil) }
                var headers = HTTPHeaders()
                headers.add(name: "Sec-WebSocket-Protocol", value: "sip")
                return channel.eventLoop.makeSucceededFuture(headers)
            },
            upgradePipelineHandler: { channel, _ in
                channel.eventLoop.makeCompletedFuture {
                    let ops = channel.pipeline.syncOperations
                    let gate = try ops.handler(type: WebSocketGate.self)
                    let admitted = gate.handOver()
                    try ops.addHandler(NIOWebSocketFrameAggregator(minNonFinalFragmentSize: 1, maxAccumulatedFrameCount: 1_024,
                                                                   maxAccumulatedFrameSize: maxMessage))
                    try ops.addHandler(SIPWebSocketFraming(maxMessageBytes: maxMessage))
                    try ops.addHandler(StreamConnectionHandler(framing: SIPFramedItems(), dispatcher: dispatcher,
                                                               transport: transport, inbound: false,
                                                               outboundAdmission: admitted))
                }
            })
        try ops.configureHTTPServerPipeline(withServerUpgrade: (upgraders: [upgrader], completionHandler: { context in
            // The HTTP side is done: the refusal handler goes with it.
            if let refuse = try? context.pipeline.syncOperations.handler(type: WebSocketRefusal.self) {
                context.pipeline.syncOperations.removeHandler(refuse, promise: nil)
            }
        }), withErrorHandling: true)
        try ops.addHandler(WebSocketRefusal(policy: policy))
    }
}

/// Before the upgrade: the connection counts against the limits (in total and per source,
/// and the TLS handshake rate for WSS) and must upgrade within the first-message time-out.
/// At the upgrade it hands its slot to the connection handler.
final class WebSocketGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = NIOAny

    private let dispatcher: Dispatcher
    private let transport: SIPTransportProtocol
    private var admittedIP: String?
    private var timer: Scheduled<Void>?
    private var handedOver = false

    init(dispatcher: Dispatcher, transport: SIPTransportProtocol) {
        self.dispatcher = dispatcher
        self.transport = transport
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { activate(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        activate(context: context)
        context.fireChannelActive()
    }

    private func activate(context: ChannelHandlerContext) {
        guard admittedIP == nil, !handedOver, let remote = context.channel.remoteAddress, let host = remote.ipAddress,
              let port = remote.port else { return }
        let config = dispatcher.configuration
        guard dispatcher.admitInbound(transport, host: host, port: port) else {
            context.close(promise: nil)
            return
        }
        admittedIP = host
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(in: .nanoseconds(config.idleTimeoutBeforeFirstMessage.nanoseconds)) { [dispatcher] in
            dispatcher.count(.connectionsClosedIdle)
            bound.value.close(promise: nil)
        }
    }

    /// The upgrade is done: the connection handler owns the slot from here on.
    func handOver() -> String? {
        timer?.cancel()
        timer = nil
        handedOver = true
        defer { admittedIP = nil }
        return admittedIP
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        if let ip = admittedIP {
            dispatcher.connections.release(ip: ip)
            admittedIP = nil
        }
        context.fireChannelInactive()
    }
}

/// Answers an HTTP request that is not an acceptable SIP WebSocket upgrade (a plain GET, no
/// `sip` subprotocol, an Origin not allowed) with the reason, and closes.
final class WebSocketRefusal: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let policy: WebSocketPolicy

    init(policy: WebSocketPolicy) { self.policy = policy }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let head) = unwrapInboundIn(data) else { return }
        let (status, reason) = policy.refusal(head) ?? (.badRequest, "WebSocket handshake refused")
        var body = context.channel.allocator.buffer(capacity: reason.utf8.count + 2)
        body.writeString(reason + "\n")
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Connection", value: "close")
        if status == .upgradeRequired {
            headers.add(name: "Upgrade", value: "websocket")
            headers.add(name: "Sec-WebSocket-Protocol", value: "sip")
        }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }
}

/// SIP over WebSocket framing (RFC 7118 5): each text or binary message carries exactly one
/// SIP message, and what the server sends goes out as one text message each. Pings are
/// answered with pongs, a close frame with a close frame (RFC 6455 5.5).
final class SIPWebSocketFraming: ChannelDuplexHandler {
    typealias InboundIn = WebSocketFrame
    typealias InboundOut = SIPStreamItem
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = WebSocketFrame

    private let maxMessageBytes: Int
    private var closing = false

    init(maxMessageBytes: Int) { self.maxMessageBytes = maxMessageBytes }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.opcode {
        case .text, .binary:
            let payload = frame.unmaskedData
            guard payload.readableBytes <= maxMessageBytes else {
                close(context, code: .messageTooLarge)
                return
            }
            guard payload.readableBytes > 0 else { return }
            context.fireChannelRead(wrapInboundOut(.message(payload)))
        case .ping:
            let pong = WebSocketFrame(fin: true, opcode: .pong, data: frame.unmaskedData)
            context.writeAndFlush(wrapOutboundOut(pong), promise: nil)
            context.fireChannelRead(wrapInboundOut(.ping))
        case .connectionClose:
            // Echo the status code, then close (RFC 6455 5.5.1).
            var data = frame.unmaskedData
            let code = data.readWebSocketErrorCode() ?? .normalClosure
            close(context, code: code)
        default:
            break
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let bytes = unwrapOutboundIn(data)
        // A CRLF keep-alive answer has no meaning here: WebSocket has its own pings.
        if bytes.readableBytes == 2, bytes.getString(at: bytes.readerIndex, length: 2) == "\r\n" {
            promise?.succeed()
            return
        }
        context.write(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .text, data: bytes)), promise: promise)
    }

    private func close(_ context: ChannelHandlerContext, code: WebSocketErrorCode) {
        guard !closing else { return }
        closing = true
        var data = context.channel.allocator.buffer(capacity: 2)
        data.write(webSocketErrorCode: code)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(WebSocketFrame(fin: true, opcode: .connectionClose, data: data)))
            .whenComplete { _ in bound.value.close(promise: nil) }
    }
}

@available(*, unavailable)
extension WebSocketGate: Sendable {}
@available(*, unavailable)
extension WebSocketRefusal: Sendable {}
@available(*, unavailable)
extension SIPWebSocketFraming: Sendable {}
