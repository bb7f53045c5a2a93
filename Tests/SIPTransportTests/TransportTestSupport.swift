import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SIPMessage
import SIPTLS
@testable import SIPTransport
import SIPTestSupport
import Testing

/// A receiver that answers every request 200 OK (after `delay`) and remembers what it got.
final class Answer200: SIPReceiver {
    let seen = NIOLockedValueBox<[(SIPRequest, SIPSource)]>([])
    let delay: Duration

    init(delay: Duration = .zero) { self.delay = delay }

    func receive(_ request: SIPRequest, from source: SIPSource) async -> SIPReceiveOutcome {
        seen.withLockedValue { $0.append((request, source)) }
        if delay > .zero { try? await Task.sleep(for: delay) }
        return .respond(SIPResponse(to: request, statusCode: 200, toTag: "t1"))
    }

    var count: Int { seen.withLockedValue { $0.count } }
    var requests: [SIPRequest] { seen.withLockedValue { $0.map(\.0) } }
    var sources: [SIPSource] { seen.withLockedValue { $0.map(\.1) } }
}

/// Certificates from the project's own script.
enum TransportCerts {
    static let dir: String = {
        let dir = NSTemporaryDirectory() + "siptransport-\(UUID().uuidString)"
        _ = try? TestCertificates.script(out: dir)
        return dir
    }()

    static func serverStore() throws -> TLSContextStore {
        try TLSContextStore(configuration: .server(certificateChain: .file(dir + "/server.pem"), privateKey: .file(dir + "/server.key")))
    }

    static func clientContext() throws -> TLSContext {
        try TLSContext(configuration: .client(serverHostname: "localhost", trustRoots: .file(dir + "/ca.pem")))
    }
}

struct Harness {
    let dispatcher: Dispatcher
    let receiver: Answer200
    let udp: Int
    let tcp: Int
    let tls: Int

    static func start(_ config: TransportConfiguration = TransportConfiguration(), delay: Duration = .zero,
                      tls: Bool = true) async throws -> Harness {
        let d = Dispatcher(configuration: config, group: MultiThreadedEventLoopGroup.singleton)
        let r = Answer200(delay: delay)
        d.addReceiver(r)
        let u = try await d.bindUDP(host: "127.0.0.1", port: 0).port ?? 0
        let t = try await d.bindTCP(host: "127.0.0.1", port: 0).port ?? 0
        var s = 0
        if tls {
            s = try await d.bindTLS(host: "127.0.0.1", port: 0, contexts: try TransportCerts.serverStore(),
                                    clientContext: try TransportCerts.clientContext()).port ?? 0
        }
        return Harness(dispatcher: d, receiver: r, udp: u, tcp: t, tls: s)
    }

    func stop() async { await dispatcher.shutdown() }
}

/// A REGISTER for alice from `sentBy` (Contact <sip:alice@127.0.0.1:9>, rport), as text.
func register(transport: String = "UDP", sentBy: String = "127.0.0.1:9", branch: String = "z9hG4bK-\(UUID().uuidString)",
              extra: [String] = [], body: String = "", callID: String = UUID().uuidString) -> String {
    var b = RegisterBuilder()
    b.transport = transport
    b.sentBy = sentBy
    b.branch = branch
    b.rport = true
    b.fromTag = "f1"
    b.callID = callID
    b.contacts = ["<sip:alice@127.0.0.1:9>"]
    b.extra = extra
    b.body = body
    return b.text()
}

/// A UDP socket for tests: sends datagrams and collects what comes back.
final class UDPPeer: Sendable {
    let channel: any Channel
    let received = NIOLockedValueBox<[String]>([])

    init(host: String = "127.0.0.1", port: Int = 0) async throws {
        let box = received
        channel = try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 65_536))
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(Collector(box: box)) }
            }
            .bind(host: host, port: port).get()
    }

    var port: Int { channel.localAddress?.port ?? 0 }

    func send(_ text: String, to port: Int) async throws {
        let env = AddressedEnvelope(remoteAddress: try SocketAddress(ipAddress: "127.0.0.1", port: port), data: ByteBuffer(string: text))
        try await channel.writeAndFlush(env)
    }

    func waitFor(_ n: Int, timeout: Duration = .seconds(5)) async -> [String] {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let r = received.withLockedValue { $0 }
            if r.count >= n { return r }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return received.withLockedValue { $0 }
    }

    /// Waits until nothing has arrived for `quiet`, then returns how many datagrams arrived in all.
    func settled(quiet: Duration = .milliseconds(300), timeout: Duration = .seconds(5)) async -> Int {
        let deadline = ContinuousClock.now + timeout
        var last = received.withLockedValue { $0.count }
        while ContinuousClock.now < deadline {
            try? await Task.sleep(for: quiet)
            let now = received.withLockedValue { $0.count }
            if now == last { return now }
            last = now
        }
        return last
    }

    func close() async { try? await channel.close() }

    final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let box: NIOLockedValueBox<[String]>
        init(box: NIOLockedValueBox<[String]>) { self.box = box }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let env = unwrapInboundIn(data)
            box.withLockedValue { $0.append(String(buffer: env.data)) }
        }
    }
}

/// A TCP socket for tests (optionally a listener's accepted connection).
final class TCPPeer: Sendable {
    let channel: any Channel
    let received: NIOLockedValueBox<String>

    static func connect(port: Int) async throws -> TCPPeer {
        let box = NIOLockedValueBox<String>("")
        let ch = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(TextCollector(box: box)) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let peer = TCPPeer(channel: ch, box: box)
        return peer
    }

    init(channel: any Channel, box: NIOLockedValueBox<String>) {
        self.channel = channel
        self.received = box
    }

    func send(_ text: String) async throws { try await channel.writeAndFlush(ByteBuffer(string: text)) }

    func waitFor(_ needle: String, count n: Int = 1, timeout: Duration = .seconds(5)) async -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let r = received.withLockedValue { $0 }
            if r.components(separatedBy: needle).count - 1 >= n { return r }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return received.withLockedValue { $0 }
    }

    final class TextCollector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let box: NIOLockedValueBox<String>
        init(box: NIOLockedValueBox<String>) { self.box = box }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let b = unwrapInboundIn(data)
            box.withLockedValue { $0 += String(buffer: b) }
        }
    }
}

/// A TCP listener for tests that records what its connections receive.
final class TCPListener: Sendable {
    let channel: any Channel
    let received = NIOLockedValueBox<String>("")
    let accepted = NIOLockedValueBox<Int>(0)

    init() async throws {
        let box = received
        let acc = accepted
        channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { ch in
                acc.withLockedValue { $0 += 1 }
                return ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(TCPPeer.TextCollector(box: box)) }
            }
            .bind(host: "127.0.0.1", port: 0).get()
    }

    var port: Int { channel.localAddress?.port ?? 0 }

    func waitFor(_ needle: String, timeout: Duration = .seconds(5)) async -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let r = received.withLockedValue { $0 }
            if r.contains(needle) { return r }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return received.withLockedValue { $0 }
    }

    func close() async { try? await channel.close() }
}
