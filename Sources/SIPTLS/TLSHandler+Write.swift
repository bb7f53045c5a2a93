public import NIOCore

// The write path: plaintext from above is encrypted at once when the connection is up,
// or queued (in order, up to a cap) behind an unfinished handshake or a write OpenSSL
// cannot finish until it has read.
extension TLSHandler {
    /// Encrypts `data` once the connection is up; before that (or behind a write blocked on a
    /// read) it is queued, up to ``TLSConfiguration/maxBufferedPlaintextBytes``.
    public func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let plaintext = unwrapOutboundIn(data)
        switch machine.write() {
        case .buffer:
            enqueue(plaintext, promise: promise)
        case .encrypt:
            encrypt(context: context, plaintext, promise: promise)
        case .fail:
            promise?.fail(TLSError.closed)
        }
    }

    /// Flushes the ciphertext written; during the handshake the flush is remembered for its end.
    public func flush(context: ChannelHandlerContext) {
        switch machine.state {
        case .idle, .handshaking:
            flushRequested = true
        case .active:
            context.flush()
            if buffered.isEmpty { connection?.releaseIdleBuffers() }
        case .closing, .closed:
            context.flush()
        }
    }

    func encrypt(context: ChannelHandlerContext, _ plaintext: ByteBuffer, promise: EventLoopPromise<Void>?) {
        guard !writeBlockedOnRead else {
            // Behind a blocked write: keep the order.
            enqueue(plaintext, promise: promise)
            return
        }
        guard let connection else {
            promise?.fail(TLSError.closed)
            return
        }
        switch connection.write(plaintext) {
        case .complete:
            if let ciphertext = connection.takeOutput(allocator: context.channel.allocator) {
                context.write(wrapOutboundOut(ciphertext), promise: promise)
            } else {
                promise?.succeed(())
            }
        case .wantRead(let written):
            // What was encrypted goes out; the rest waits for the next read. The promise
            // completes with the write of the last part.
            if let ciphertext = connection.takeOutput(allocator: context.channel.allocator) {
                context.write(wrapOutboundOut(ciphertext), promise: nil)
            }
            var rest = plaintext
            rest.moveReaderIndex(forwardBy: written)
            writeBlockedOnRead = true
            buffered.prepend((rest, promise))
            bufferedBytes += rest.readableBytes
        case .failed(let error):
            promise?.fail(error)
            fail(context: context, error)
        }
    }

    /// Queues plaintext behind a blocked write or an unfinished handshake, up to the cap.
    func enqueue(_ plaintext: ByteBuffer, promise: EventLoopPromise<Void>?) {
        let limit = tlsContext?.configuration.maxBufferedPlaintextBytes ?? contextStore?.context.configuration.maxBufferedPlaintextBytes ?? 262_144
        guard bufferedBytes + plaintext.readableBytes <= limit else {
            promise?.fail(TLSError.bufferedPlaintextLimitExceeded(limit: limit))
            return
        }
        bufferedBytes += plaintext.readableBytes
        buffered.append((plaintext, promise))
    }

    /// Encrypts the queued plaintext in order, until it is all out or OpenSSL wants to read first.
    func encryptBuffered(context: ChannelHandlerContext) {
        while !writeBlockedOnRead, let (plaintext, promise) = buffered.popFirst() {
            bufferedBytes -= plaintext.readableBytes
            encrypt(context: context, plaintext, promise: promise)
        }
    }

    func unbuffer(context: ChannelHandlerContext) {
        let hadPending = !buffered.isEmpty
        encryptBuffered(context: context)
        if flushRequested || hadPending {
            flushRequested = false
            context.flush()
        }
    }
}
