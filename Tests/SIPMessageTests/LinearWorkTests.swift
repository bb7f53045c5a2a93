@testable import SIPMessage
import Testing

/// Work that must stay linear in the input, measured in counted units (bytes examined,
/// comparisons) rather than time: doubling the input may at most double the work.
@Suite struct LinearWorkTests {
    func folded(lines: Int) -> String {
        var text = "REGISTER sip:example.com SIP/2.0\r\nVia: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
        text += "From: <sip:a@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: fold\r\nCSeq: 1 REGISTER\r\n"
        text += "Subject: start"
        for _ in 0..<lines { text += "\r\n x" }
        return text + "\r\nContent-Length: 0\r\n\r\n"
    }

    func work(_ body: () -> Void) -> Int {
        let counter = WorkCounter()
        WorkCounter.$current.withValue(counter) { body() }
        return counter.value
    }

    @Test func foldedLinesAreUnfoldedOnce() throws {
        let limits = SIPParserLimits(maxMessageBytes: 1 << 20, maxHeaderCount: 100_000, maxLineBytes: 8_192)
        let parser = SIPMessageParser(limits: limits)
        let small = work { _ = try? parser.parse(folded(lines: 2_000)) }
        let large = work { _ = try? parser.parse(folded(lines: 8_000)) }
        #expect(small > 0)
        // Four times the lines: about four times the work (quadratic would be sixteen).
        #expect(large <= small * 5, "\(small) → \(large)")
        let r = try parseRequest(folded(lines: 3), limits: limits)
        #expect(r.headers[SIPHeaderName("Subject")] == "start x x x")
    }

    @Test func continuationLinesCountAgainstTheHeaderLimit() {
        // 15,000 continuation lines in one 60 KB datagram: refused, not unfolded.
        #expect(parseFault(folded(lines: 15_000), limits: SIPParserLimits(maxMessageBytes: 65_536)) == .tooManyHeaders(limit: 256))
        #expect(parseFault(folded(lines: 200)) == nil)
    }

    @Test func aHeadArrivingByteByByteIsSearchedOnce() {
        let message = Array(folded(lines: 3_000).utf8)
        let limits = SIPParserLimits(maxMessageBytes: 1 << 20, maxHeaderCount: 100_000, maxLineBytes: 8_192)
        func feed(_ count: Int) -> Int {
            work {
                var progress = SIPFraming.Progress()
                for n in 1...count {
                    let frame = message.withUnsafeBytes {
                        SIPFraming.frame(UnsafeRawBufferPointer(rebasing: $0[0..<n]), limits: limits, progress: &progress)
                    }
                    if case .message = frame { return }
                }
                Issue.record("no message after \(count) bytes")
            }
        }
        let total = feed(message.count)
        // Every byte looked at a small constant number of times, not once per read (n²/2).
        #expect(total <= 4 * message.count, "\(total) for \(message.count) bytes")
    }

    @Test func aBodyArrivingByteByByteDoesNotRescanTheHead() {
        let body = String(repeating: "b", count: 4_000)
        let text = "MESSAGE sip:a@example.com SIP/2.0\r\nVia: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1\r\n"
            + "From: <sip:b@example.com>;tag=1\r\nTo: <sip:a@example.com>\r\nCall-ID: body\r\nCSeq: 1 MESSAGE\r\n"
            + "Content-Length: \(body.utf8.count)\r\n\r\n" + body
        let message = Array(text.utf8)
        var frames = 0
        let total = work {
            var progress = SIPFraming.Progress()
            for n in 1...message.count {
                let frame = message.withUnsafeBytes {
                    SIPFraming.frame(UnsafeRawBufferPointer(rebasing: $0[0..<n]), progress: &progress)
                }
                if case .message(let head, let bodyBytes) = frame {
                    #expect(head + bodyBytes == message.count)
                    frames += 1
                }
            }
        }
        #expect(frames == 1)
        #expect(total <= 4 * message.count, "\(total) for \(message.count) bytes")
    }

    @Test func uriEquivalenceWithManyParametersIsLinear() throws {
        func uri(_ n: Int, flip: Bool = false) throws -> SIPURI {
            var text = "sip:alice@example.com"
            for i in 0..<n { text += ";p\(i)=v\(i)" }
            if flip { text += ";p0=other" }
            return try #require(SIPURI(text))
        }
        let a = try uri(2_000), b = try uri(2_000)
        #expect(a.isEquivalent(to: b))
        #expect(a.equivalenceKey == b.equivalenceKey)
        let c = try #require(SIPURI("sip:alice@example.com;p5=other"))
        #expect(!a.isEquivalent(to: c))
        // Parameters present on one side only do not matter; mandatory ones do (RFC 3261 19.1.4).
        #expect(try #require(SIPURI("sip:alice@EXAMPLE.com;x=1")).isEquivalent(to: try #require(SIPURI("sip:alice@example.com"))))
        #expect(!(try #require(SIPURI("sip:alice@example.com;transport=tcp"))).isEquivalent(to: try #require(SIPURI("sip:alice@example.com"))))
        #expect(try #require(SIPURI("sip:alice@EXAMPLE.com;transport=TCP")).equivalenceKey
                == (try #require(SIPURI("sip:alice@example.com;transport=tcp"))).equivalenceKey)
    }

    /// RFC 4475 3.1.2.1: empty Via parameters make the Via unreadable.
    @Test func viaWithEmptyParametersDoesNotParse() {
        #expect(SIPVia.parse("SIP/2.0/UDP 192.0.2.15;;") == nil)
        #expect(SIPVia.parse("SIP/2.0/UDP 192.0.2.15;branch=z9hG4bK1;;rport") == nil)
        #expect(SIPVia.parse("SIP/2.0/UDP 192.0.2.15;branch=z9hG4bK1;rport")?.hasRport == true)
    }
}
