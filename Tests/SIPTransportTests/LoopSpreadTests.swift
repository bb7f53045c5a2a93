import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SIPMessage
@testable import SIPTransport
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

    @Test func oneUDPPeerUsesEveryLoopAndACallIDKeepsItsLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let d = Dispatcher(group: group)
        let recorder = LoopRecorder(loops: d.loops)
        d.addReceiver(recorder)
        let port = try await d.bindUDP(host: "127.0.0.1", port: 0).port ?? 0
        let peer = try await UDPPeer()
        for i in 0..<40 {
            try await peer.send(register(sentBy: "127.0.0.1:\(peer.port)", callID: "spread-\(i)"), to: port)
            try await peer.send(register(sentBy: "127.0.0.1:\(peer.port)", callID: "spread-\(i)"), to: port)
        }
        _ = await peer.waitFor(80)
        let seen = recorder.seen.withLockedValue { $0 }
        #expect(seen.count == 80)
        #expect(Set(seen.map(\.loop)) == [0, 1], "one peer, one socket: every loop still works")
        let byCall = Dictionary(grouping: seen, by: \.callID).mapValues { Set($0.map(\.loop)) }
        #expect(byCall.values.allSatisfy { $0.count == 1 }, "a Call-ID moved between loops")
        await peer.close()
        await d.shutdown()
        try await group.shutdownGracefully()
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
