internal import COpenSSL
internal import CSIPTLSShims
import NIOCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// One `SSL*` with a pair of memory BIOs, driven synchronously: ciphertext is fed
/// in with ``feed(_:)`` and taken out with ``takeOutput(allocator:)``; every call
/// returns complete, want-read, or failed with OpenSSL's error stack. Used only on
/// its channel's event loop.
final class OpenSSLConnection {
    private let ssl: OpaquePointer
    private var readBIO: OpaquePointer
    private var writeBIO: OpaquePointer
    /// The transport ended: the read BIO carries the EOF mark and is kept.
    private var inputEnded = false
    /// Keeps the SSL_CTX's owner alive as long as this SSL (it holds its own reference too).
    let context: TLSContext

    enum Step: Equatable {
        case complete
        case wantRead
        case failed(TLSError)
    }

    enum ReadResult {
        case data(ByteBuffer)
        case wantRead
        /// The peer sent close_notify.
        case closeNotify
        case failed(TLSError)
    }

    enum ShutdownResult: Equatable {
        /// Our close_notify is queued; the peer's has not arrived.
        case sent
        /// Both directions are closed.
        case complete
        case failed(TLSError)
    }

    init?(context: TLSContext, serverHostname: String? = nil) {
        guard let ssl = SSL_new(context.ctx) else { return nil }
        guard let r = BIO_new(BIO_s_mem()), let w = BIO_new(BIO_s_mem()) else {
            SSL_free(ssl)
            return nil
        }
        SSL_set_bio(ssl, r, w)  // the SSL owns both BIOs now
        self.ssl = ssl
        self.readBIO = r
        self.writeBIO = w
        self.context = context
        switch context.configuration.role {
        case .server:
            SSL_set_accept_state(ssl)
        case .client:
            SSL_set_connect_state(ssl)
            if let name = serverHostname ?? context.configuration.serverHostname {
                // SNI only for names, not IP literals (RFC 6066 3).
                if !Self.isIPLiteral(name) {
                    _ = CSIPTLSShims_SSL_set_tlsext_host_name(ssl, name)
                }
                if context.configuration.verifyServer {
                    SSL_set_hostflags(ssl, UInt32(X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS))
                    _ = SSL_set1_host(ssl, name)
                }
            }
        }
    }

    deinit { SSL_free(ssl) }

    /// Whether `name` is an IPv4 or IPv6 address literal (as `inet_pton` reads them; an IPv6
    /// literal may be bracketed). `cafe.de` or `beef` are names, `10.0.0.1` and `::1` are not.
    static func isIPLiteral(_ name: String) -> Bool {
        var host = Substring(name)
        if host.hasPrefix("["), host.hasSuffix("]") { host = host.dropFirst().dropLast() }
        var v4 = in_addr()
        var v6 = in6_addr()
        return String(host).withCString { p in inet_pton(AF_INET, p, &v4) == 1 || inet_pton(AF_INET6, p, &v6) == 1 }
    }

    /// Swaps in fresh memory BIOs once the handshake is over: a memory BIO never gives back
    /// the capacity it grew to for the handshake flights (several KiB per connection), which
    /// an idle connection would otherwise carry for its whole life. Unread input moves over.
    func renewBuffers() {
        guard let r = BIO_new(BIO_s_mem()), let w = BIO_new(BIO_s_mem()) else { return }
        let pending = Int(BIO_ctrl_pending(readBIO))
        if pending > 0 {
            var carry = [UInt8](repeating: 0, count: pending)
            let n = carry.withUnsafeMutableBytes { BIO_read(readBIO, $0.baseAddress, Int32(pending)) }
            if n > 0 { _ = carry.withUnsafeBytes { BIO_write(r, $0.baseAddress, n) } }
        }
        // The write BIO is drained after every call, so nothing is lost there.
        SSL_set0_rbio(ssl, r)  // takes ownership of r, frees the old read BIO
        SSL_set0_wbio(ssl, w)  // takes ownership of w, frees the old write BIO
        readBIO = r
        writeBIO = w
    }

    /// Ciphertext from the network.
    func feed(_ buffer: ByteBuffer) {
        buffer.withUnsafeReadableBytes { p in
            guard p.count > 0 else { return }
            _ = BIO_write(readBIO, p.baseAddress, Int32(p.count))
        }
    }

    /// Tells OpenSSL that the transport has ended (a read now reports EOF instead of want-read).
    func markEndOfInput() {
        inputEnded = true
        _ = CSIPTLSShims_BIO_set_mem_eof_return(readBIO, 0)
    }

    /// Gives back what an empty memory BIO grew to for the last records (a memory BIO keeps its
    /// largest size for good): a connection that sits idle after a REGISTER and its 200 then
    /// holds no copy of either, about 1.3 KiB less per idle connection. A BIO is swapped for a
    /// fresh one only when it is empty and has grown, so a busy connection pays two small
    /// allocations per exchange and an idle one nothing.
    func releaseIdleBuffers() {
        if !inputEnded, BIO_ctrl_pending(readBIO) == 0, CSIPTLSShims_BIO_mem_capacity(readBIO) > 0,
           let r = BIO_new(BIO_s_mem()) {
            SSL_set0_rbio(ssl, r)  // takes ownership of r, frees the old read BIO
            readBIO = r
        }
        if BIO_ctrl_pending(writeBIO) == 0, CSIPTLSShims_BIO_mem_capacity(writeBIO) > 0,
           let w = BIO_new(BIO_s_mem()) {
            SSL_set0_wbio(ssl, w)  // takes ownership of w, frees the old write BIO
            writeBIO = w
        }
    }

    /// Ciphertext to send, if any (drain after every call, including successful ones).
    func takeOutput(allocator: ByteBufferAllocator) -> ByteBuffer? {
        let pending = Int(BIO_ctrl_pending(writeBIO))
        guard pending > 0 else { return nil }
        var out = allocator.buffer(capacity: pending)
        out.writeWithUnsafeMutableBytes(minimumWritableBytes: pending) { p in
            Int(max(0, BIO_read(writeBIO, p.baseAddress, Int32(pending))))
        }
        return out
    }

    func handshake() -> Step {
        OpenSSLErrors.clear()
        let rc = SSL_do_handshake(ssl)
        if rc == 1 { return .complete }
        let err = SSL_get_error(ssl, rc)
        switch err {
        case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
            return .wantRead
        default:
            let stack = OpenSSLErrors.drain()
            let verify = SSL_get_verify_result(ssl)
            let verifyText = verify == X509_V_OK ? nil : X509_verify_cert_error_string(verify).map { String(cString: $0) }
            if stack.isEmpty && verifyText == nil { return .failed(.eofDuringHandshake) }
            return .failed(.handshakeFailed(stack: stack, verifyResult: verifyText))
        }
    }

    /// Reads one chunk of plaintext (up to 16 KiB).
    func read(allocator: ByteBufferAllocator) -> ReadResult {
        var buffer = allocator.buffer(capacity: 16_384)
        var result = ReadResult.wantRead
        OpenSSLErrors.clear()
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 16_384) { p in
            var got = 0
            let rc = SSL_read_ex(ssl, p.baseAddress, p.count, &got)
            if rc == 1 {
                result = .data(ByteBuffer())  // filled below
                return got
            }
            let err = SSL_get_error(ssl, rc)
            switch err {
            case SSL_ERROR_WANT_READ, SSL_ERROR_WANT_WRITE:
                result = .wantRead
            case SSL_ERROR_ZERO_RETURN:
                result = .closeNotify
            default:
                let stack = OpenSSLErrors.drain()
                if Self.isUnexpectedEOF(stack) || (err == SSL_ERROR_SYSCALL && stack.isEmpty) {
                    result = .failed(.uncleanShutdown)
                } else {
                    result = .failed(.protocolError(stack: stack))
                }
            }
            return 0
        }
        if case .data = result { return .data(buffer) }
        return result
    }

    /// What ``write(_:)`` did with a buffer.
    enum WriteResult: Equatable {
        /// All of it is encrypted.
        case complete
        /// OpenSSL needs to read before it can write more (a renegotiation or key update in
        /// progress): the first `written` bytes are encrypted, the rest is not and must be
        /// written again after the next read.
        case wantRead(written: Int)
        case failed(TLSError)
    }

    /// Encrypts `buffer`. A memory BIO never pushes back, so normally all of it is consumed;
    /// when OpenSSL wants to read first, the result says how much was taken.
    func write(_ buffer: ByteBuffer) -> WriteResult {
        var result = WriteResult.complete
        buffer.withUnsafeReadableBytes { p in
            var offset = 0
            while offset < p.count {
                OpenSSLErrors.clear()
                var written = 0
                guard let base = p.baseAddress else { return }
                var chunk = p.count - offset
                if let limit = simulateWantReadAfter {
                    if limit == 0 {
                        simulateWantReadAfter = nil
                        result = .wantRead(written: offset)
                        return
                    }
                    chunk = min(chunk, limit)
                }
                let rc = SSL_write_ex(ssl, base + offset, chunk, &written)
                if rc == 1 {
                    offset += written
                    if let limit = simulateWantReadAfter { simulateWantReadAfter = limit - written }
                    continue
                }
                let err = SSL_get_error(ssl, rc)
                if err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE {
                    result = .wantRead(written: offset)
                } else {
                    result = .failed(.protocolError(stack: OpenSSLErrors.drain()))
                }
                return
            }
        }
        return result
    }

    /// Tests only: after this many more plaintext bytes, report want-read once (as a
    /// renegotiation would), to reach a path that renegotiation being off makes unreachable.
    var simulateWantReadAfter: Int?

    func shutdown() -> ShutdownResult {
        OpenSSLErrors.clear()
        let rc = SSL_shutdown(ssl)
        if rc == 1 { return .complete }
        if rc == 0 { return .sent }
        let err = SSL_get_error(ssl, rc)
        if err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE { return .sent }
        return .failed(.protocolError(stack: OpenSSLErrors.drain()))
    }

    var negotiatedVersion: TLSVersion? {
        switch SSL_version(ssl) {
        case TLS1_2_VERSION: return .tls12
        case TLS1_3_VERSION: return .tls13
        default: return nil
        }
    }

    var cipher: String? {
        guard let c = SSL_get_current_cipher(ssl), let name = SSL_CIPHER_get_name(c) else { return nil }
        return String(cString: name)
    }

    var sessionReused: Bool { SSL_session_reused(ssl) == 1 }

    /// The name the client sent in SNI (on a server), if any.
    var serverName: String? {
        SSL_get_servername(ssl, Int32(TLSEXT_NAMETYPE_host_name)).map { String(cString: $0) }
    }

    /// The peer's certificate and whether it verified: only `SSL_get_verify_result` ==
    /// `X509_V_OK` counts (under `optional` client certificates the handshake goes on whatever
    /// the result, so the result is what tells).
    func peerCertificate() -> PeerCertificate? {
        guard let cert = SSL_get0_peer_certificate(ssl) else { return nil }
        let result = SSL_get_verify_result(ssl)
        var info = PeerCertificate(x509: cert, verified: result == X509_V_OK)
        if result != X509_V_OK {
            info.verificationError = X509_verify_cert_error_string(result).map { String(cString: $0) } ?? "error \(result)"
        }
        return info
    }

    /// The current session, for resumption by a later client connection.
    func session() -> TLSSession? {
        guard let s = SSL_get1_session(ssl) else { return nil }
        return TLSSession(owning: s)
    }

    func resume(_ session: TLSSession) {
        _ = SSL_set_session(ssl, session.pointer)
    }

    private static func isUnexpectedEOF(_ stack: [OpenSSLError]) -> Bool {
        stack.contains { $0.reason.contains("unexpected eof") }
    }
}

/// A TLS session a client can offer again to skip the full handshake.
public final class TLSSession: @unchecked Sendable {
    // Safety of @unchecked Sendable: an SSL_SESSION is immutable once obtained from a
    // completed handshake; OpenSSL reference-counts it with atomic operations.
    let pointer: OpaquePointer
    init(owning p: OpaquePointer) { pointer = p }
    deinit { SSL_SESSION_free(pointer) }
}
