import NIOCore
import SIPMessage
@testable import SIPTransport
import Testing

@Suite struct SIPStreamDecoderTests {
    static let register = [
        "REGISTER sip:example.com SIP/2.0", "Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK1",
        "From: <sip:a@example.com>;tag=1", "To: <sip:a@example.com>", "Call-ID: c1", "CSeq: 1 REGISTER",
        "Content-Length: 4", "", "body",
    ].joined(separator: "\r\n")

    /// The decoder as the connection handler drives it: bytes in, then every item that is complete.
    final class Stream {
        var decoder: SIPStreamDecoder
        var out: [SIPStreamItem] = []
        init(maxMessage: Int) { decoder = SIPStreamDecoder(limits: SIPParserLimits(maxMessageBytes: maxMessage)) }
        func writeInbound(_ bytes: ByteBuffer) throws {
            decoder.append(bytes)
            while let item = decoder.next() { out.append(item) }
        }
    }

    func channel(maxMessage: Int = 65_536) throws -> Stream { Stream(maxMessage: maxMessage) }

    func items(_ c: Stream) throws -> [SIPStreamItem] {
        defer { c.out = [] }
        return c.out
    }

    func messages(_ items: [SIPStreamItem]) -> [String] {
        items.compactMap { if case .message(let b) = $0 { return String(buffer: b) } else { return nil } }
    }

    @Test func splitByteByByte() throws {
        let c = try channel()
        for b in Self.register.utf8 { try c.writeInbound(ByteBuffer(bytes: [b])) }
        #expect(messages(try items(c)) == [Self.register])
    }

    @Test func pipelined() throws {
        let c = try channel()
        try c.writeInbound(ByteBuffer(string: Self.register + Self.register + "\r\n\r\n" + Self.register))
        let got = try items(c)
        #expect(messages(got) == [Self.register, Self.register, Self.register])
        #expect(got.contains { if case .ping = $0 { return true } else { return false } })
    }

    @Test func keepAlivePing() throws {
        let c = try channel()
        try c.writeInbound(ByteBuffer(string: "\r\n"))
        #expect(try items(c).isEmpty)
        try c.writeInbound(ByteBuffer(string: "\r\n"))
        let got = try items(c)
        #expect(got.count == 1)
        guard case .ping = got[0] else { Issue.record("expected a ping"); return }
    }

    func framingError(_ text: String, maxMessage: Int = 65_536) throws -> SIPParseError.Fault? {
        let c = try channel(maxMessage: maxMessage)
        try c.writeInbound(ByteBuffer(string: text))
        for i in try items(c) { if case .framingError(let e, _) = i { return e.fault } }
        return nil
    }

    @Test func errors() throws {
        #expect(try framingError(Self.register.replacingFirst("Content-Length: 4", "X: y")) == .missingContentLength)
        #expect(try framingError(Self.register.replacingFirst("Content-Length: 4", "Content-Length: -4")) == .invalidContentLength)
        #expect(try framingError(Self.register.replacingFirst("Content-Length: 4", "l: x")) == .invalidContentLength)
        #expect(try framingError(Self.register.replacingFirst("Content-Length: 4", "Content-Length: 70000")) == .messageTooLarge(limit: 65_536))
        // An oversized head is refused before its end arrives.
        #expect(try framingError("REGISTER sip:a SIP/2.0\r\nX: " + String(repeating: "a", count: 3000), maxMessage: 2048)
                == .messageTooLarge(limit: 2048))
        // After an error everything else is dropped.
        let c = try channel()
        try c.writeInbound(ByteBuffer(string: Self.register.replacingFirst("Content-Length: 4", "X: y")))
        _ = try items(c)
        try c.writeInbound(ByteBuffer(string: Self.register))
        #expect(try items(c).isEmpty)
    }

    /// Between messages nothing is held: an idle connection keeps no buffer.
    @Test func nothingIsBufferedBetweenMessages() throws {
        let c = try channel()
        try c.writeInbound(ByteBuffer(string: Self.register))
        #expect(c.decoder.bufferedBytes == 0)
        let bytes = Array(Self.register.utf8)
        let half = bytes.count / 2
        try c.writeInbound(ByteBuffer(bytes: Array(Self.register.utf8) + bytes[..<half]))
        #expect(messages(try items(c)) == [Self.register, Self.register])
        #expect(c.decoder.bufferedBytes == half)
        try c.writeInbound(ByteBuffer(bytes: bytes[half...]))
        #expect(messages(try items(c)) == [Self.register])
        #expect(c.decoder.bufferedBytes == 0)
    }

    @Test func compactContentLength() throws {
        let c = try channel()
        let text = Self.register.replacingFirst("Content-Length: 4", "l: 4")
        try c.writeInbound(ByteBuffer(string: text))
        #expect(messages(try items(c)) == [text])
    }
}

extension String {
    func replacingFirst(_ target: String, _ replacement: String) -> String {
        guard let r = firstRange(of: target) else { return self }
        return self[..<r.lowerBound] + replacement + self[r.upperBound...]
    }
}
