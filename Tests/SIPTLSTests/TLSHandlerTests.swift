import COpenSSL
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOTLS
@testable import SIPTLS
import SIPTestSupport
import Testing

@Suite struct TLSHandlerInMemoryTests {
    @Test func handshakeAndDataBothWaysTLS13() throws {
        let pair = try Pair(server: serverConfig(), client: clientConfig())
        try pair.connect()
        #expect(pair.clientRecorder.handshakes == 1 && pair.serverRecorder.handshakes == 1)
        #expect(pair.clientRecorder.info?.version == .tls13)
        #expect(pair.clientRecorder.info?.peerCertificate?.verified == true)
        #expect(pair.clientRecorder.info?.peerCertificate?.dnsNames.contains("localhost") == true)
        pair.send(fromClient: "REGISTER")
        pair.send(fromServer: "SIP/2.0 200 OK")
        #expect(pair.serverRecorder.text == "REGISTER")
        #expect(pair.clientRecorder.text == "SIP/2.0 200 OK")
        #expect(pair.clientRecorder.errors.isEmpty && pair.serverRecorder.errors.isEmpty)
    }

    @Test func tls12WithECDHEAEAD() throws {
        var client = clientConfig()
        client.maximumVersion = .tls12
        let pair = try Pair(server: serverConfig(), client: client)
        try pair.connect()
        #expect(pair.serverRecorder.info?.version == .tls12)
        let cipher = try #require(pair.serverRecorder.info?.cipher)
        #expect(cipher.hasPrefix("ECDHE-") && (cipher.contains("GCM") || cipher.contains("CHACHA20")))
    }

    @Test func oneMiBInSmallAndLargeWrites() throws {
        let pair = try Pair(server: serverConfig(), client: clientConfig())
        try pair.connect()
        let big = [UInt8](repeating: 0x61, count: 1 << 20)
        var offset = 0
        while offset < big.count {
            pair.client.write(ByteBuffer(bytes: big[offset..<min(big.count, offset + 65_536)]), promise: nil)
            offset += 65_536
        }
        pair.client.flush()
        pair.interact()
        #expect(pair.serverRecorder.received.count == 1 << 20)
        // One byte per write, flushed in batches.
        pair.serverRecorder.received = []
        for i in 0..<(1 << 20) {
            pair.client.write(ByteBuffer(bytes: [UInt8(i & 0x7F)]), promise: nil)
            if i % 8192 == 8191 {
                pair.client.flush()
                pair.interact()
            }
        }
        pair.client.flush()
        pair.interact()
        #expect(pair.serverRecorder.received.count == 1 << 20)
        #expect(pair.serverRecorder.received.prefix(130) == ArraySlice((0..<130).map { UInt8($0 & 0x7F) }))
    }

    @Test func earlyWritesAreSentAfterTheHandshake() throws {
        let pair = try Pair(server: serverConfig(), client: clientConfig())
        let promise = pair.client.eventLoop.makePromise(of: Void.self)
        // Written before connect: buffered, not fed to SSL_write (which would start an implicit handshake).
        pair.client.write(ByteBuffer(string: "early"), promise: promise)
        pair.client.flush()
        try pair.connect()
        #expect(pair.serverRecorder.text == "early")
        try promise.futureResult.wait()
    }

    @Test func bufferedPlaintextIsCapped() throws {
        var client = clientConfig()
        client.maxBufferedPlaintextBytes = 10
        let pair = try Pair(server: serverConfig(), client: client)
        let p1 = pair.client.eventLoop.makePromise(of: Void.self)
        let p2 = pair.client.eventLoop.makePromise(of: Void.self)
        pair.client.write(ByteBuffer(string: "0123456789"), promise: p1)
        pair.client.write(ByteBuffer(string: "x"), promise: p2)
        #expect(throws: TLSError.bufferedPlaintextLimitExceeded(limit: 10)) { try p2.futureResult.wait() }
        try pair.connect()
        try p1.futureResult.wait()
    }

    @Test func closeNotifyFromClient() throws {
        let pair = try Pair(server: serverConfig(), client: clientConfig())
        try pair.connect()
        let closed = pair.client.close()
        pair.interact()
        try closed.wait()
        #expect(!pair.server.isActive)
        #expect(pair.serverRecorder.tlsErrors.isEmpty)
    }

    @Test func closeNotifyFromServer() throws {
        let pair = try Pair(server: serverConfig(), client: clientConfig())
        try pair.connect()
        let closed = pair.server.close()
        pair.interact()
        try closed.wait()
        #expect(!pair.client.isActive)
        #expect(pair.clientRecorder.tlsErrors.isEmpty)
    }

    @Test func closeTimesOutWhenThePeerIsSilent() throws {
        var server = serverConfig()
        server.closeTimeout = .milliseconds(200)
        let pair = try Pair(server: server, client: clientConfig())
        try pair.connect()
        let closed = pair.server.close()
        _ = pair.takeClientOutput()
        #expect(pair.server.isActive)
        pair.server.embeddedEventLoop.advanceTime(by: .milliseconds(250))
        try closed.wait()
        #expect(!pair.server.isActive)
    }

    @Test func unexpectedEOFAfterHandshakeIsUncleanShutdown() throws {
        let pair = try Pair(server: serverConfig(), client: clientConfig())
        try pair.connect()
        pair.send(fromClient: "REGISTER sip:x SIP/2.0\r\n")
        pair.server.pipeline.fireChannelInactive()
        #expect(pair.serverRecorder.tlsErrors == [.uncleanShutdown])
        #expect(pair.serverRecorder.text == "REGISTER sip:x SIP/2.0\r\n")
    }

    @Test func eofDuringHandshake() throws {
        let pair = try Pair(server: serverConfig(), client: clientConfig())
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 5061)
        try pair.server.connect(to: address).wait()
        try pair.client.connect(to: address).wait()
        for b in pair.takeClientOutput() { try? pair.server.writeInbound(b) }
        pair.server.pipeline.fireChannelInactive()
        #expect(pair.serverRecorder.tlsErrors == [.eofDuringHandshake])
    }

    @Test func halfARecordWaitsForTheRest() throws {
        let pair = try Pair(server: serverConfig(), client: clientConfig())
        try pair.connect()
        pair.client.writeAndFlush(ByteBuffer(string: "OPTIONS"), promise: nil)
        var record = ByteBuffer()
        for var b in pair.takeClientOutput() { record.writeBuffer(&b) }
        let half = record.readSlice(length: record.readableBytes / 2)!
        try pair.server.writeInbound(half)
        #expect(pair.serverRecorder.received.isEmpty)
        try pair.server.writeInbound(record)
        #expect(pair.serverRecorder.text == "OPTIONS")
    }

    @Test func corruptedRecordIsAProtocolErrorAndCloses() throws {
        let pair = try Pair(server: serverConfig(), client: clientConfig())
        try pair.connect()
        pair.client.writeAndFlush(ByteBuffer(string: "OPTIONS sip:x SIP/2.0"), promise: nil)
        var record = ByteBuffer()
        for var b in pair.takeClientOutput() { record.writeBuffer(&b) }
        let at = record.readerIndex + record.readableBytes - 3
        let byte = record.getInteger(at: at, as: UInt8.self)!
        record.setInteger(byte ^ 0xFF, at: at)
        try? pair.server.writeInbound(record)
        #expect(pair.serverRecorder.received.isEmpty)
        guard case .protocolError(let stack)? = pair.serverRecorder.tlsErrors.first else {
            Issue.record("expected a protocol error, got \(pair.serverRecorder.errors)")
            return
        }
        #expect(stack.contains { $0.reason.contains("bad record mac") || $0.reason.contains("decryption failed") })
        #expect(!pair.server.isActive)
        // The alert was flushed before closing.
        #expect((try? pair.server.readOutbound(as: ByteBuffer.self)) != nil)
    }

    @Test func staleOpenSSLErrorOnTheThreadDoesNotKillAHealthyConnection() throws {
        let pair = try Pair(server: serverConfig(), client: clientConfig())
        try pair.connect()
        // Leave an unrelated error on this thread's queue, as a failed PEM parse would.
        let garbage: [UInt8] = Array("not a certificate".utf8)
        let bio = BIO_new(BIO_s_mem())
        _ = garbage.withUnsafeBytes { BIO_write(bio, $0.baseAddress, Int32($0.count)) }
        #expect(PEM_read_bio_X509(bio, nil, nil, nil) == nil)
        BIO_free(bio)
        #expect(ERR_peek_error() != 0)
        pair.send(fromClient: "still alive")
        #expect(pair.serverRecorder.text == "still alive")
        #expect(pair.serverRecorder.errors.isEmpty)
    }

    @Test func closeDuringTheHandshakeWaitsForItThenSaysGoodbye() throws {
        let pair = try Pair(server: serverConfig(), client: clientConfig())
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 5061)
        try pair.server.connect(to: address).wait()
        try pair.client.connect(to: address).wait()
        // The ClientHello is out; the client asks to close (after one write) before the handshake is over.
        let written = pair.client.writeAndFlush(ByteBuffer(string: "OPTIONS"))
        let closed = pair.client.close()
        let closeDone = NIOLockedValueBox(false)
        closed.whenComplete { _ in closeDone.withLockedValue { $0 = true } }
        #expect(pair.client.isActive && !closeDone.withLockedValue { $0 }, "the close waits for the handshake")
        let late = pair.client.writeAndFlush(ByteBuffer(string: "late"))
        let lateFailed = NIOLockedValueBox(false)
        late.whenFailure { _ in lateFailed.withLockedValue { $0 = true } }
        #expect(lateFailed.withLockedValue { $0 }, "nothing may be written after close()")
        pair.interact()
        try closed.wait()
        try written.wait()
        #expect(!pair.client.isActive && !pair.server.isActive)
        // A proper shutdown: the server completed its handshake, got the data, then close_notify (no EOF error).
        #expect(pair.serverRecorder.handshakes == 1)
        #expect(pair.serverRecorder.text == "OPTIONS")
        #expect(pair.serverRecorder.tlsErrors.isEmpty, "\(pair.serverRecorder.errors)")
        #expect(pair.clientRecorder.tlsErrors.isEmpty, "\(pair.clientRecorder.errors)")
    }

    @Test func closeDuringAHandshakeThatTimesOutCompletes() throws {
        var server = serverConfig()
        server.handshakeTimeout = .milliseconds(300)
        let pair = try Pair(server: server, client: clientConfig())
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 5061)
        try pair.server.connect(to: address).wait()
        // Something written waits for the handshake, so the close waits too (bounded by the timer).
        let write = pair.server.writeAndFlush(ByteBuffer(string: "OPTIONS"))
        let closed = pair.server.close()
        let closeDone = NIOLockedValueBox(false)
        let writeFailed = NIOLockedValueBox(false)
        write.whenFailure { _ in writeFailed.withLockedValue { $0 = true } }
        closed.whenComplete { _ in closeDone.withLockedValue { $0 = true } }
        #expect(!closeDone.withLockedValue { $0 })
        pair.server.embeddedEventLoop.advanceTime(by: .milliseconds(301))
        #expect(closeDone.withLockedValue { $0 } && !pair.server.isActive)
        #expect(writeFailed.withLockedValue { $0 })
    }

    @Test func closeDuringAHandshakeWithNothingWrittenIsImmediate() throws {
        let pair = try Pair(server: serverConfig(), client: clientConfig())
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 5061)
        try pair.server.connect(to: address).wait()
        let closed = pair.server.close()
        let closeDone = NIOLockedValueBox(false)
        closed.whenComplete { _ in closeDone.withLockedValue { $0 = true } }
        #expect(closeDone.withLockedValue { $0 } && !pair.server.isActive)
    }

    @Test func wantReadInTheMiddleOfAWriteKeepsTheRestForAfterTheNextRead() throws {
        let pair = try Pair(server: serverConfig(), client: clientConfig())
        try pair.connect()
        pair.serverHandler.simulateWantReadAfter = 7
        let first = pair.server.writeAndFlush(ByteBuffer(string: "SIP/2.0 200 OK\r\n"))
        let second = pair.server.writeAndFlush(ByteBuffer(string: "Via: x\r\n"))
        let done = NIOLockedValueBox([false, false])
        first.whenSuccess { done.withLockedValue { $0[0] = true } }
        second.whenSuccess { done.withLockedValue { $0[1] = true } }
        pair.interact()
        #expect(pair.clientRecorder.text == "SIP/2.0", "only what OpenSSL took is sent")
        #expect(done.withLockedValue { $0 } == [false, false], "the write is not complete yet")
        // The next read unblocks OpenSSL: the rest goes out, in order.
        pair.send(fromClient: "ping")
        #expect(pair.clientRecorder.text == "SIP/2.0 200 OK\r\nVia: x\r\n")
        #expect(done.withLockedValue { $0 } == [true, true])
        #expect(pair.serverRecorder.text == "ping")
    }

    @Test func wantReadMidWriteThenCloseFailsTheRestInsteadOfDroppingIt() throws {
        let pair = try Pair(server: serverConfig(), client: clientConfig())
        try pair.connect()
        pair.serverHandler.simulateWantReadAfter = 3
        let w = pair.server.writeAndFlush(ByteBuffer(string: "REGISTER"))
        let failed = NIOLockedValueBox(false)
        w.whenFailure { _ in failed.withLockedValue { $0 = true } }
        _ = pair.server.close()
        pair.interact()
        #expect(failed.withLockedValue { $0 })
    }

    @Test func sniIsSentForNamesMadeOfHexLettersButNotForAddresses() {
        for name in ["cafe.de", "beef", "dead.beef.cafe", "a.b", "localhost", "sip.example.com"] {
            #expect(!OpenSSLConnection.isIPLiteral(name), "\(name)")
        }
        for literal in ["127.0.0.1", "10.0.0.255", "::1", "fe80::1", "2001:db8::cafe", "[2001:db8::1]", "::ffff:192.0.2.1"] {
            #expect(OpenSSLConnection.isIPLiteral(literal), "\(literal)")
        }
    }

    @Test func sniReachesTheServerForAHexLetterName() throws {
        let server = try TLSContext(configuration: serverConfig())
        let client = try TLSContext(configuration: .client(serverHostname: "cafe.de", trustRoots: .file(TestCerts.ec.ca),
                                                           verifyServer: false))
        let pair = try Pair(server: server, client: client)
        try pair.connect()
        #expect(pair.serverRecorder.handshakes == 1)
        #expect(pair.serverHandler.serverNameIndication == "cafe.de")
    }

    @Test func optionalClientCertificateFromAnotherCAKeepsTheConnectionUnverified() throws {
        let seen = NIOLockedValueBox<[UnverifiedClientCertificate]>([])
        let store = try TLSContextStore(configuration: serverConfig(clientCerts: .optional)) { u in seen.withLockedValue { $0.append(u) } }
        let pair = try Pair(serverStore: store, client: try TLSContext(configuration: clientConfig(user: "alice", clientSet: TestCerts.other)))
        try pair.connect()
        #expect(pair.serverRecorder.handshakes == 1 && pair.clientRecorder.handshakes == 1)
        let cert = try #require(pair.serverRecorder.info?.peerCertificate)
        #expect(!cert.verified)
        #expect(cert.verificationError != nil)
        pair.send(fromClient: "REGISTER")
        #expect(pair.serverRecorder.text == "REGISTER", "the connection stays up")
        let reported = seen.withLockedValue { $0 }
        #expect(reported.count == 1 && reported.first?.certificate.fingerprintSHA256 == cert.fingerprintSHA256)

        // A certificate from the right CA still verifies and is not reported.
        let good = try Pair(serverStore: store, client: try TLSContext(configuration: clientConfig(user: "alice")))
        try good.connect()
        #expect(good.serverRecorder.info?.peerCertificate?.verified == true)
        #expect(good.serverRecorder.info?.peerCertificate?.verificationError == nil)
        #expect(seen.withLockedValue { $0.count } == 1)

        // `required` still refuses it.
        let strict = try Pair(server: serverConfig(clientCerts: .required), client: clientConfig(user: "alice", clientSet: TestCerts.other))
        try strict.connect()
        #expect(strict.serverRecorder.handshakes == 0)
        #expect(!strict.serverRecorder.tlsErrors.isEmpty)
    }

    @Test func handshakeTimeout() throws {
        var server = serverConfig()
        server.handshakeTimeout = .milliseconds(300)
        let pair = try Pair(server: server, client: clientConfig())
        let address = try SocketAddress(ipAddress: "127.0.0.1", port: 5061)
        try pair.server.connect(to: address).wait()
        try pair.client.connect(to: address).wait()
        var hello = ByteBuffer()
        for var b in pair.takeClientOutput() { hello.writeBuffer(&b) }
        try pair.server.writeInbound(hello.getSlice(at: hello.readerIndex, length: hello.readableBytes / 2)!)
        pair.server.embeddedEventLoop.advanceTime(by: .milliseconds(301))
        #expect(pair.serverRecorder.tlsErrors == [.handshakeTimeout])
        #expect(!pair.server.isActive)
    }
}
