import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import NIOTLS
@testable import SIPTLS
import SIPTestSupport
import Testing

/// Answers each line with `echo:<line>` and then closes with close_notify.
final class EchoOnceHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        let text = b.readString(length: b.readableBytes) ?? ""
        guard text.contains("\n") else { return }
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: "echo:" + text)), promise: nil)
        context.close(promise: nil)
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        ServerErrors.shared.record(error)
        context.close(promise: nil)
    }
}

/// Errors seen by test servers, across threads.
final class ServerErrors: Sendable {
    static let shared = ServerErrors()
    private let box = NIOLockedValueBox<[String]>([])
    func record(_ e: any Error) { box.withLockedValue { $0.append(String(describing: e)) } }
    var all: [String] { box.withLockedValue { $0 } }
    func reset() { box.withLockedValue { $0 = [] } }
}

struct TLSTestServer {
    let group: MultiThreadedEventLoopGroup
    let channel: any Channel
    var port: Int { channel.localAddress?.port ?? 0 }

    init(_ store: TLSContextStore) throws {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        channel = try ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([TLSHandler(contextStore: store), EchoOnceHandler()])
                }
            }
            .bind(host: "127.0.0.1", port: 0).wait()
    }

    func stop() {
        try? channel.close().wait()
        try? group.syncShutdownGracefully()
    }
}

@Suite(.serialized) struct TLSRealPeerTests {
    static let openssl = "/usr/bin/openssl"

    func sClient(port: Int, _ set: TestCertificates, extra: [String]) throws -> (Int32, String) {
        try runCombined(Self.openssl, ["s_client", "-connect", "127.0.0.1:\(port)", "-CAfile", set.ca, "-verify_return_error",
                                       "-servername", "localhost", "-ign_eof"] + extra, input: "hello\n", timeout: 15)
    }

    @Test(arguments: [("ec", "-tls1_3"), ("ec", "-tls1_2"), ("rsa", "-tls1_3"), ("rsa", "-tls1_2")])
    func opensslClientToOurServer(kind: String, version: String) throws {
        let set = kind == "ec" ? TestCerts.ec : TestCerts.rsa
        let server = try TLSTestServer(TLSContextStore(configuration: serverConfig(set)))
        defer { server.stop() }
        let (status, out) = try sClient(port: server.port, set, extra: [version])
        #expect(status == 0, "\(out)")
        #expect(out.contains("echo:hello"))
        #expect(out.contains("Verify return code: 0 (ok)"))
        #expect(out.contains(version == "-tls1_3" ? "TLSv1.3" : "TLSv1.2"))
    }

    @Test(arguments: ["-tls1_3", "-tls1_2"])
    func opensslClientWithClientCertificate(version: String) throws {
        let server = try TLSTestServer(TLSContextStore(configuration: serverConfig(clientCerts: .required)))
        defer { server.stop() }
        let set = TestCerts.ec
        let (status, out) = try sClient(port: server.port, set, extra: [version, "-cert", set.cert("alice"), "-key", set.key("alice")])
        #expect(status == 0, "\(out)")
        #expect(out.contains("echo:hello"))
        let (_, refused) = try sClient(port: server.port, set, extra: [version])
        #expect(!refused.contains("echo:hello"))
    }

    @Test(arguments: ["-tls1_3", "-tls1_2"])
    func opensslClientWithAnotherCAsCertificateUnderOptional(version: String) throws {
        let seen = NIOLockedValueBox<[UnverifiedClientCertificate]>([])
        let store = try TLSContextStore(configuration: serverConfig(clientCerts: .optional)) { u in seen.withLockedValue { $0.append(u) } }
        let server = try TLSTestServer(store)
        defer { server.stop() }
        let other = TestCerts.other
        // A desk phone presenting its factory certificate: the connection stays up, unverified.
        let (status, out) = try sClient(port: server.port, TestCerts.ec, extra: [version, "-cert", other.cert("alice"), "-key", other.key("alice")])
        #expect(status == 0, "\(out)")
        #expect(out.contains("echo:hello"), "\(out)")
        let reported = seen.withLockedValue { $0 }
        #expect(reported.count == 1, "\(reported)")
        #expect(reported.first?.certificate.verified == false)
        #expect(reported.first?.reason.isEmpty == false)
        #expect(reported.first?.remote.hasPrefix("127.0.0.1:") == true)

        // `required` still refuses the same certificate.
        let strict = try TLSTestServer(TLSContextStore(configuration: serverConfig(clientCerts: .required)))
        defer { strict.stop() }
        let (_, refused) = try sClient(port: strict.port, TestCerts.ec, extra: [version, "-cert", other.cert("alice"), "-key", other.key("alice")])
        #expect(!refused.contains("echo:hello"), "\(refused)")
    }

    @Test func tls11OnlyClientIsRefused() throws {
        let server = try TLSTestServer(TLSContextStore(configuration: serverConfig()))
        defer { server.stop() }
        let (status, out) = try sClient(port: server.port, TestCerts.ec, extra: ["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"])
        #expect(status != 0)
        #expect(!out.contains("echo:hello"))
    }

    @Test(arguments: ["-tls1_3", "-tls1_2"])
    func ourClientToOpenSSLServer(version: String) async throws {
        let set = TestCerts.ec
        let port = freeLoopbackPort()
        let p = try ChildProcess(Self.openssl, ["s_server", "-accept", "127.0.0.1:\(port)", "-cert", set.serverCert,
                                                "-key", set.serverKey, "-CAfile", set.ca, "-Verify", "1", "-verify_return_error",
                                                "-rev", version], stdin: true)
        defer { if p.isRunning { p.signal(SIGKILL) } }
        // Wait for the listener.
        var ready = false
        for _ in 0..<100 where !ready {
            ready = (try? connectProbe(port: port)) == true
            if !ready { usleep(50_000) }
        }
        #expect(ready)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        defer { shutdown(group) }
        let clientContext = try TLSContext(configuration: clientConfig(set, hostname: "localhost", user: "alice"))
        let received = NIOLockedValueBox<String>("")
        let done = group.next().makePromise(of: Void.self)
        defer { done.succeed(()) }
        let channel = try await ClientBootstrap(group: group)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandlers([
                        TLSHandler(context: clientContext), CollectHandler(received: received, done: done),
                    ])
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await channel.writeAndFlush(ByteBuffer(string: "hello\n"))
        let waited = group.next().scheduleTask(in: .seconds(10)) { done.succeed(()) }
        try await done.futureResult.get()
        waited.cancel()
        #expect(received.withLockedValue { $0 }.contains("olleh"))
        try? await channel.close()
    }

    @Test func plaintextSIPToTheTLSPortIsRefused() async throws {
        ServerErrors.shared.reset()
        let server = try TLSTestServer(TLSContextStore(configuration: serverConfig()))
        defer { server.stop() }
        let (status, _) = try runCombined("/bin/bash", ["-c", "exec 3<>/dev/tcp/127.0.0.1/\(server.port); printf 'OPTIONS sip:x SIP/2.0\\r\\n\\r\\n' >&3; timeout 5 cat <&3 >/dev/null; echo closed"],
                                        timeout: 15)
        #expect(status == 0)
        try await Task.sleep(for: .milliseconds(100))
        #expect(ServerErrors.shared.all.contains { $0.contains("TLS handshake failed") })
    }

    @Test func clientHelloCutInHalfThenSilenceTimesOut() async throws {
        ServerErrors.shared.reset()
        var config = serverConfig()
        config.handshakeTimeout = .milliseconds(500)
        let server = try TLSTestServer(TLSContextStore(configuration: config))
        defer { server.stop() }
        let hex = try Self.halfAClientHello()
        let started = Date()
        let (_, out) = try runCombined("/bin/bash", ["-c", "exec 3<>/dev/tcp/127.0.0.1/\(server.port); printf '\(hex)' >&3; timeout 5 cat <&3 >/dev/null; echo closed"],
                                        timeout: 15)
        let elapsed = Date().timeIntervalSince(started)
        #expect(out.contains("closed"))
        #expect(elapsed < 4, "the server closed the connection after its handshake timeout")
        try await Task.sleep(for: .milliseconds(100))
        #expect(ServerErrors.shared.all.contains { $0.contains("TLS handshake timed out") })
    }
}

extension TLSRealPeerTests {
    /// A real ClientHello from our own client, cut in half, as `\\xNN` text for printf. The
    /// in-memory pair lives and dies here, on the thread that made it (EmbeddedChannel is
    /// single-threaded; released after an `await` it would be closed from another thread).
    static func halfAClientHello() throws -> String {
        let pair = try Pair(server: serverConfig(), client: clientConfig())
        try pair.client.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        var hello = ByteBuffer()
        for var b in pair.takeClientOutput() { hello.writeBuffer(&b) }
        let half = hello.getBytes(at: hello.readerIndex, length: hello.readableBytes / 2) ?? []
        return half.map { String(format: "\\x%02x", $0) }.joined()
    }
}

final class CollectHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let received: NIOLockedValueBox<String>
    let done: EventLoopPromise<Void>
    init(received: NIOLockedValueBox<String>, done: EventLoopPromise<Void>) {
        self.received = received
        self.done = done
    }
    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var b = unwrapInboundIn(data)
        let s = b.readString(length: b.readableBytes) ?? ""
        received.withLockedValue { $0 += s }
        if s.contains("\n") { done.succeed(()) }
    }
    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        received.withLockedValue { $0 += "error: \(error)" }
        done.succeed(())
    }
}

func connectProbe(port: Int) throws -> Bool {
    let (status, _) = try runCombined("/bin/bash", ["-c", "exec 3<>/dev/tcp/127.0.0.1/\(port) && exec 3>&-"], timeout: 2)
    return status == 0
}

func shutdown(_ group: MultiThreadedEventLoopGroup) {
    try? group.syncShutdownGracefully()
}
