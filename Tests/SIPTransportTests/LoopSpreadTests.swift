import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SIPMessage
@testable import SIPTransport
import SIPTestSupport
import Testing

/// Requests from one peer are processed on every event loop, by Call-ID.
@Suite(.serialized) struct LoopSpreadTests {
    /// Remembers which loop ran each request, by Call-ID.
    final class LoopRecorder: SIPReceiver {
        let loops: [any EventLoop]
        let seen = NIOLockedValueBox<[(callID: String, loop: Int)]>([])

        init(loops: [any EventLoop]) { self.loops = loops }

        func receive(_ request: SIPRequest, from source: SIPSource) async -> SIPReceiveOutcome {
            let index = loops.firstIndex { $0.inEventLoop } ?? -1
            seen.withLockedValue { $0.append((String(request.headers.callID ?? ""), index)) }
            return .respond(SIPResponse(to: request, statusCode: 200, toTag: "t"))
        }
    }

    /// Feeds `count` requests to the dispatcher as the loop `reader` would, `copies` of each
    /// Call-ID; `behind`: as a leg whose socket has a backlog.
    func feed(_ d: Dispatcher, reader: any EventLoop, count: Int, copies: Int, from first: Int = 0,
              behind: Bool = false) async throws {
        let source = SIPSource(transport: .udp, remoteHost: "127.0.0.1", remotePort: 9, localPort: 9)
        try await reader.submit {
            for i in first..<(first + count) {
                for _ in 0..<copies {
                    let text = register(sentBy: "127.0.0.1:9", callID: "spread-\(i)")
                    d.handleInbound(ByteBuffer(string: text), source: source, loop: reader, readerIsBehind: behind)
                }
            }
        }.get()
    }

    func waitFor(_ recorder: LoopRecorder, _ n: Int) async -> [(callID: String, loop: Int)] {
        for _ in 0..<500 {
            let seen = recorder.seen.withLockedValue { $0 }
            if seen.count >= n { return seen }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return recorder.seen.withLockedValue { $0 }
    }

    /// A dispatcher on two loops of its own with a recorder as its receiver, shut down after `body`.
    func withDispatcher(spread: Bool, _ body: (Dispatcher, LoopRecorder) async throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        var config = TransportConfiguration()
        config.spreadAcrossLoops = spread
        let d = Dispatcher(configuration: config, group: group)
        let recorder = LoopRecorder(loops: d.loops)
        d.addReceiver(recorder)
        try await body(d, recorder)
        await d.shutdown()
        try await group.shutdownGracefully()
    }

    @Test func aBacklogFromOnePeerUsesEveryLoopAndACallIDKeepsItsLoop() async throws {
        try await withDispatcher(spread: true) { d, recorder in
            try await feed(d, reader: d.loops[0], count: 40, copies: 2, behind: true)
            let seen = await waitFor(recorder, 80)
            #expect(seen.count == 80)
            #expect(Set(seen.map(\.loop)) == [0, 1], "one reading loop: every loop still works")
            let byCall = Dictionary(grouping: seen, by: \.callID).mapValues { Set($0.map(\.loop)) }
            #expect(byCall.values.allSatisfy { $0.count == 1 }, "a Call-ID moved between loops")
        }
    }

    @Test func aPeerTheReadingLoopKeepsUpWithStaysOnIt() async throws {
        try await withDispatcher(spread: true) { d, recorder in
            // A burst the reading loop takes in without a backlog: no hand-over.
            try await feed(d, reader: d.loops[1], count: 30, copies: 1)
            let seen = await waitFor(recorder, 30)
            #expect(seen.count == 30 && Set(seen.map(\.loop)) == [1], "\(seen.map(\.loop))")
            #expect(d.loopAssignment.inFlight(on: 0) == 0)
        }
    }

    @Test func withoutSpreadingTheReadingLoopWorks() async throws {
        try await withDispatcher(spread: false) { d, recorder in
            try await feed(d, reader: d.loops[1], count: 20, copies: 1)
            let seen = await waitFor(recorder, 20)
            #expect(seen.count == 20 && Set(seen.map(\.loop)) == [1])
        }
    }

    @Test func oneUDPPeerIsAnsweredWhateverLoopWorks() async throws {
        try await withDispatcher(spread: true) { d, _ in
            let port = try await d.bindUDP(host: "127.0.0.1", port: 0).port ?? 0
            let peer = try await UDPPeer()
            for i in 0..<60 { try await peer.send(register(sentBy: "127.0.0.1:\(peer.port)", callID: "udp-\(i)"), to: port) }
            let answers = await peer.waitFor(60)
            #expect(answers.count == 60 && answers.allSatisfy { $0.hasPrefix("SIP/2.0 200 OK") })
            await peer.close()
        }
    }

    @Test func callIDHashReadsLongAndCompactForms() {
        func hash(_ text: String) -> UInt64? {
            Array(text.utf8).withUnsafeBytes { Dispatcher.callIDHash($0) }
        }
        let long = hash("REGISTER sip:a SIP/2.0\r\nVia: x\r\nCall-ID: abc@h\r\n\r\n")
        #expect(long != nil)
        #expect(hash("REGISTER sip:a SIP/2.0\r\ncall-id :  abc@h \r\n\r\n") == long)
        #expect(hash("REGISTER sip:a SIP/2.0\r\ni: abc@h\r\n\r\n") == long)
        #expect(hash("REGISTER sip:a SIP/2.0\r\nCall-ID: abd@h\r\n\r\n") != long)
        #expect(hash("REGISTER sip:a SIP/2.0\r\nIf-Match: abc@h\r\nCall-Info: x\r\n\r\nCall-ID: body") == nil)
    }
}
