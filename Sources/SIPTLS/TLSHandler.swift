public import NIOCore
import NIOTLS

/// A NIO duplex handler that speaks TLS through OpenSSL: ciphertext below, plaintext
/// above. Writes made before the handshake completes are buffered (up to a cap) and
/// sent after it, and so are writes OpenSSL cannot take until it has read (the rest of
/// a write is kept and retried after the next read, never dropped); `close()` sends
/// close_notify and waits for the peer's with a timer (asked for during the handshake,
/// it waits for the handshake to end first);
/// a transport that ends without close_notify after the handshake is reported as
/// ``TLSError/uncleanShutdown`` (harmless at a SIP message boundary); a handshake that
/// does not finish in time is aborted.
public final class TLSHandler: ChannelDuplexHandler, RemovableChannelHandler {
    /// Ciphertext from the transport.
    public typealias InboundIn = ByteBuffer
    /// Plaintext for the handlers above.
    public typealias InboundOut = ByteBuffer
    /// Plaintext from the handlers above.
    public typealias OutboundIn = ByteBuffer
    /// Ciphertext for the transport.
    public typealias OutboundOut = ByteBuffer

    let contextStore: TLSContextStore?
    var tlsContext: TLSContext?
    private let serverHostname: String?
    private let resumeSession: TLSSession?
    var connection: OpenSSLConnection?
    var machine = StateMachine()
    /// Plaintext not yet encrypted: written before the handshake completed, or after a write
    /// OpenSSL could not finish until it has read (``writeBlockedOnRead``). In order.
    /// Starts with room for one: most connections never buffer (16 slots cost 560 bytes each).
    var buffered = CircularBuffer<(ByteBuffer, EventLoopPromise<Void>?)>(initialCapacity: 1)
    var bufferedBytes = 0
    /// OpenSSL answered want-read in the middle of a write: what is left waits in `buffered`
    /// and is retried after the next read.
    var writeBlockedOnRead = false
    var flushRequested = false
    private var closePromise: EventLoopPromise<Void>?
    private var handshakeTimer: Scheduled<Void>?
    private var closeTimer: Scheduled<Void>?
    private var deliveredData = false

    /// Negotiated parameters, once the handshake has completed.
    public private(set) var connectionInfo: TLSConnectionInfo?

    /// A server (or client) handler that takes the store's current context when the channel becomes active.
    public init(contextStore: TLSContextStore) {
        self.contextStore = contextStore
        self.tlsContext = nil
        self.serverHostname = nil
        self.resumeSession = nil
    }

    /// A handler on a fixed context; for a client, `serverHostname` overrides the configured name
    /// (SNI and verification) and `resuming` offers a previous session.
    public init(context: TLSContext, serverHostname: String? = nil, resuming session: TLSSession? = nil) {
        self.contextStore = nil
        self.tlsContext = context
        self.serverHostname = serverHostname
        self.resumeSession = session
    }

    /// The session of this connection, for resumption by a later client connection.
    public var session: TLSSession? { connection?.session() }

    /// On a server: the host name the client asked for in SNI.
    var serverNameIndication: String? { connection?.serverName }

    /// Tests only: make OpenSSL's next writes stop with want-read after this many bytes.
    var simulateWantReadAfter: Int? {
        get { connection?.simulateWantReadAfter }
        set { connection?.simulateWantReadAfter = newValue }
    }

    // MARK: Lifecycle

    /// Starts the handshake when added to a channel that is already active.
    public func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    /// Starts the handshake (a client sends its ClientHello at once) and the handshake timer.
    public func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    /// Cancels the timers and fails every write still buffered with ``TLSError/closed``.
    public func handlerRemoved(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        closeTimer?.cancel()
        failBuffered(TLSError.closed)
    }

    private func start(context: ChannelHandlerContext) {
        guard machine.channelActive() == .startHandshake else { return }
        let ctx = tlsContext ?? contextStore?.context
        guard let ctx, let conn = OpenSSLConnection(context: ctx, serverHostname: serverHostname) else {
            machine.fatalError()
            context.fireErrorCaught(TLSError.configuration("cannot create a TLS connection", stack: OpenSSLErrors.drain()))
            context.close(promise: nil)
            return
        }
        tlsContext = ctx
        if let resumeSession { conn.resume(resumeSession) }
        connection = conn
        let timeout = ctx.configuration.handshakeTimeout
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        handshakeTimer = context.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.nanosecondsClamped))) {
            let (handler, context) = loopBound.value
            handler.handshakeTimedOut(context: context)
        }
        if ctx.configuration.role == .client {
            driveHandshake(context: context)
        }
    }

    private func handshakeTimedOut(context: ChannelHandlerContext) {
        guard machine.handshakeTimedOut() == .failAndClose else { return }
        failBuffered(TLSError.handshakeTimeout)
        context.fireErrorCaught(TLSError.handshakeTimeout)
        let p = closePromise
        closePromise = nil
        context.close(promise: p)
    }

    // MARK: Inbound

    /// Feeds ciphertext to OpenSSL: advances the handshake, or passes the decrypted plaintext up.
    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let bytes = unwrapInboundIn(data)
        guard let connection else { return }
        switch machine.state {
        case .idle, .closed:
            return
        case .handshaking:
            connection.feed(bytes)
            driveHandshake(context: context)
        case .active, .closing:
            connection.feed(bytes)
            readPlaintext(context: context)
            if writeBlockedOnRead, machine.state == .active {
                // OpenSSL has read: try the rest of the blocked write (and what queued behind it) again.
                writeBlockedOnRead = false
                encryptBuffered(context: context)
                context.flush()
            }
        }
    }

    /// Passes read-complete up when plaintext was delivered, and flushes what OpenSSL queued.
    public func channelReadComplete(context: ChannelHandlerContext) {
        if deliveredData {
            deliveredData = false
            context.fireChannelReadComplete()
        }
        context.flush()
        if machine.state == .active, buffered.isEmpty { connection?.releaseIdleBuffers() }
    }

    /// Classifies the end of the transport: ``TLSError/eofDuringHandshake``, ``TLSError/uncleanShutdown``
    /// (no close_notify after the handshake) or a clean close; fails buffered writes.
    public func channelInactive(context: ChannelHandlerContext) {
        handshakeTimer?.cancel()
        closeTimer?.cancel()
        switch machine.channelInactive() {
        case .failHandshake:
            failBuffered(TLSError.eofDuringHandshake)
            context.fireErrorCaught(TLSError.eofDuringHandshake)
            // A close deferred until the end of the handshake: the transport is closed now.
            closePromise?.succeed(())
            closePromise = nil
        case .uncleanShutdown:
            // Anything still buffered in OpenSSL is handed up first; then the classification.
            connection?.markEndOfInput()
            context.fireErrorCaught(TLSError.uncleanShutdown)
        case .completeClose:
            closePromise?.succeed(())
            closePromise = nil
        case .none:
            break
        }
        failBuffered(TLSError.closed)
        context.fireChannelInactive()
    }

    private func driveHandshake(context: ChannelHandlerContext) {
        guard let connection else { return }
        let step = connection.handshake()
        flushOutput(context: context)
        switch step {
        case .wantRead:
            return
        case .failed(let error):
            fail(context: context, error)
        case .complete:
            handshakeTimer?.cancel()
            handshakeTimer = nil
            connection.renewBuffers()
            let info = TLSConnectionInfo(version: connection.negotiatedVersion, cipher: connection.cipher,
                                         peerCertificate: connection.peerCertificate(),
                                         sessionReused: connection.sessionReused)
            connectionInfo = info
            switch machine.handshakeCompleted() {
            case .becomeActive:
                reportUnverifiedClientCertificate(info, context: context)
                context.fireUserInboundEventTriggered(TLSUserEvent.handshakeCompleted(negotiatedProtocol: nil))
                context.fireUserInboundEventTriggered(TLSEstablishedEvent(info: info))
                unbuffer(context: context)
                // TLS 1.3 peers may send data in the same flight as Finished.
                readPlaintext(context: context)
            case .closeAfterHandshake:
                // close() came during the handshake: what was written before it goes out, then close_notify.
                unbuffer(context: context)
                sendCloseNotify(context: context)
            case .none:
                break
            }
        }
    }

    private func readPlaintext(context: ChannelHandlerContext) {
        guard let connection else { return }
        // Bounded: each pass consumes input, and the input is bounded by what was fed.
        for _ in 0..<10_000 {
            switch connection.read(allocator: context.channel.allocator) {
            case .data(let plaintext):
                deliveredData = true
                context.fireChannelRead(wrapInboundOut(plaintext))
            case .wantRead:
                flushOutput(context: context)
                return
            case .closeNotify:
                flushOutput(context: context)
                switch machine.closeNotifyReceived() {
                case .replyAndClose:
                    _ = connection.shutdown()
                    flushOutput(context: context)
                    context.close(promise: nil)
                case .closeTransport:
                    closeTimer?.cancel()
                    let p = closePromise
                    closePromise = nil
                    context.close(promise: p)
                case .none:
                    break
                }
                return
            case .failed(let error):
                fail(context: context, error)
                return
            }
            if machine.state == .closed { return }
        }
    }

    // MARK: Closing (writes: TLSHandler+Write.swift)

    /// Closes TLS first: sends close_notify and waits (bounded by the close timeout) for the
    /// peer's before closing the transport; during the handshake, waits for it to end.
    /// Half-closes (`mode` other than `.all`) pass straight through.
    public func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        guard mode == .all else {
            context.close(mode: mode, promise: promise)
            return
        }
        switch machine.closeRequested(pendingWrites: !buffered.isEmpty) {
        case .closeTransport:
            handshakeTimer?.cancel()
            failBuffered(TLSError.closed)
            context.close(promise: promise)
        case .deferUntilHandshakeEnds:
            // Carried out when the handshake ends; the handshake timer still bounds the wait.
            closePromise = promise
        case .sendCloseNotify:
            closePromise = promise
            sendCloseNotify(context: context)
        case .alreadyClosing:
            if let promise {
                if let existing = closePromise { existing.futureResult.cascade(to: promise) } else { closePromise = promise }
            }
        case .alreadyClosed:
            // TLS is over, but the transport below may still be open: let it close.
            context.close(mode: mode, promise: promise)
        }
    }

    private func sendCloseNotify(context: ChannelHandlerContext) {
        // Plaintext still waiting for OpenSSL to read cannot go out after close_notify.
        failBuffered(TLSError.closed)
        guard let connection else {
            context.close(promise: closePromise)
            closePromise = nil
            return
        }
        let result = connection.shutdown()
        flushOutput(context: context)
        switch result {
        case .complete, .failed:
            let p = closePromise
            closePromise = nil
            context.close(promise: p)
        case .sent:
            let timeout = tlsContext?.configuration.closeTimeout ?? .seconds(5)
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            closeTimer = context.eventLoop.scheduleTask(in: .nanoseconds(Int64(timeout.nanosecondsClamped))) {
                let (handler, context) = loopBound.value
                guard handler.machine.closeTimedOut() == .failAndClose else { return }
                let p = handler.closePromise
                handler.closePromise = nil
                context.close(promise: p)
            }
        }
    }

    /// Under `optional` client certificates a certificate that does not verify leaves the
    /// connection up without an identity; the store's observer hears of it (logs, metrics).
    private func reportUnverifiedClientCertificate(_ info: TLSConnectionInfo, context: ChannelHandlerContext) {
        guard tlsContext?.configuration.role == .server, let peer = info.peerCertificate, !peer.verified,
              let observer = contextStore?.unverifiedClientCertificateObserver else { return }
        let remote = context.channel.remoteAddress.map { a in
            guard let ip = a.ipAddress, let port = a.port else { return "\(a)" }
            return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
        } ?? "?"
        observer(UnverifiedClientCertificate(remote: remote, certificate: peer,
                                             reason: peer.verificationError ?? "not verified"))
    }

    // MARK: Helpers

    /// Sends whatever OpenSSL queued (handshake records, tickets, alerts) right away.
    private func flushOutput(context: ChannelHandlerContext) {
        guard let connection, let out = connection.takeOutput(allocator: context.channel.allocator) else { return }
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    func fail(context: ChannelHandlerContext, _ error: TLSError) {
        machine.fatalError()
        handshakeTimer?.cancel()
        closeTimer?.cancel()
        // The alert OpenSSL queued goes out before the transport closes.
        flushOutput(context: context)
        failBuffered(error)
        context.fireErrorCaught(error)
        let p = closePromise
        closePromise = nil
        context.close(promise: p)
    }

    private func failBuffered(_ error: any Error) {
        let pending = buffered
        buffered = CircularBuffer(initialCapacity: 1)
        bufferedBytes = 0
        writeBlockedOnRead = false
        for (_, promise) in pending { promise?.fail(error) }
    }
}

@available(*, unavailable)
extension TLSHandler: Sendable {}

extension Duration {
    var nanosecondsClamped: Int64 {
        let (s, atto) = components
        if s > Int64.max / 1_000_000_000 - 1 { return Int64.max }
        return s * 1_000_000_000 + atto / 1_000_000_000
    }
}
