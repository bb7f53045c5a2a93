import NIOCore
import Testing
@testable import SIPMessage

@Suite struct SIPSerializerTests {
    @Test func responseFromRequestPerRFC3261_8_2_6() throws {
        let request = try parseRequest(Fixtures.baresipTLS)
        var response = SIPResponse(to: request, statusCode: 200, toTag: "abc", server: "sip-registrar")
        response.headers.add(.contact, "<sip:alice@127.0.0.1:35161;transport=tls>;expires=600")
        let text = String(decoding: response.serialized(), as: UTF8.self)
        #expect(text == """
        SIP/2.0 200 OK\r
        Via: SIP/2.0/TLS 127.0.0.1:35161;branch=z9hG4bKaa8332ea7e4356b2;rport\r
        To: <sip:alice@example.com>;tag=abc\r
        From: <sip:alice@example.com>;tag=c932b6af12c6a5aa\r
        Call-ID: c7d6fcc281d15b30\r
        CSeq: 40208 REGISTER\r
        Server: sip-registrar\r
        Contact: <sip:alice@127.0.0.1:35161;transport=tls>;expires=600\r
        Content-Length: 0\r
        \r

        """)
    }

    @Test func existingToTagIsKept() throws {
        let request = try parseRequest(Fixtures.rfcRegister.replacingOccurrences("To: Bob <sip:bob@biloxi.com>", "To: Bob <sip:bob@biloxi.com>;tag=zz"))
        let response = SIPResponse(to: request, statusCode: 200, toTag: "abc")
        #expect(try response.headers.to?.tag == "zz")
    }

    @Test func viaOrderIsKept() throws {
        let text = Fixtures.rfcRegister.replacingOccurrences("Max-Forwards: 70", "Via: SIP/2.0/TCP second;branch=z9hG4bK2\r\nMax-Forwards: 70")
        let request = try parseRequest(text)
        let response = SIPResponse(to: request, statusCode: 404)
        #expect(try response.headers.via.map(\.host) == ["bobspc.biloxi.com", "second"])
        #expect(response.reasonPhrase == "Not Found")
    }

    @Test func contentLengthIsAlwaysCorrect() throws {
        var request = try parseRequest(Fixtures.rfcInvite)
        request.headers.set(.contentLength, "9999")
        request.body = Array("hello".utf8)
        let text = String(decoding: request.serialized(), as: UTF8.self)
        #expect(text.hasSuffix("Content-Length: 5\r\n\r\nhello"))
        #expect(!text.contains("9999"))
    }

    @Test(arguments: [Fixtures.rfcRegister, Fixtures.rfcRegisterOK, Fixtures.rfcInvite, Fixtures.baresipTLS, Fixtures.linphoneSIPS, Fixtures.netSIP])
    func roundTrip(text: String) throws {
        let parser = SIPMessageParser()
        let first = try parser.parse(text)
        let bytes = first.serialized()
        let second = try parser.parse(bytes)
        #expect(second.serialized() == bytes)
        #expect(first.headers.count == second.headers.count)
        for (a, b) in zip(first.headers, second.headers) {
            #expect(a.name == b.name && a.value == b.value)
        }
    }

    @Test func byteBufferRoundTrip() throws {
        let request = try parseRequest(Fixtures.rfcRegister)
        var buffer = ByteBuffer()
        request.write(into: &buffer)
        guard case .request(let again) = try SIPMessageParser().parse(buffer) else { Issue.record(); return }
        #expect(again == (try parseRequest(String(decoding: request.serialized(), as: UTF8.self))))
    }

    @Test func buildsRequestsFromScratch() throws {
        var headers = SIPHeaders()
        headers.add(.via, "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKx")
        headers.add(.from, NameAddress(uri: SIPURI(user: "a", host: "example.com"), parameters: ["tag": "1"]).description)
        headers.add(.to, NameAddress(displayName: "A b", uri: SIPURI(user: "a", host: "example.com")).description)
        headers.add(.callID, "c1")
        headers.add(.cseq, SIPCSeq(sequence: 1, method: .register).description)
        let request = SIPRequest(method: .register, uri: SIPURI(host: "example.com"), headers: headers)
        let text = String(decoding: request.serialized(), as: UTF8.self)
        #expect(text.hasPrefix("REGISTER sip:example.com SIP/2.0\r\n"))
        #expect(text.contains("To: \"A b\" <sip:a@example.com>\r\n"))
        let parsed = try parseRequest(text)
        #expect(try parsed.headers.from?.tag == "1")
    }

    @Test func headerNamesCompareCaseInsensitivelyAndCompact() {
        #expect(SIPHeaderName("call-id") == .callID)
        #expect(SIPHeaderName("I") == .callID)
        #expect(SIPHeaderName("X-Foo") == SIPHeaderName("x-foo"))
        #expect(SIPHeaderName("X-Foo").hashValue == SIPHeaderName("x-FOO").hashValue)
        #expect(SIPHeaderName("X-Foo") != SIPHeaderName("X-Bar"))
        #expect(SIPHeaderName("m").name == "Contact")
        #expect(SIPHeaderName("WWW-AUTHENTICATE").name == "WWW-Authenticate")
    }

    @Test func dateFormatting() {
        #expect(SIPDate.format(secondsSince1970: 1_289_690_940) == "Sat, 13 Nov 2010 23:29:00 GMT")
        #expect(SIPDate.format(secondsSince1970: 0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(SIPDate.format(secondsSince1970: 951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
    }

    @Test func qValues() {
        #expect(SIPContact.parseQ("0.5") == 500)
        #expect(SIPContact.parseQ("1") == 1000)
        #expect(SIPContact.parseQ("1.000") == 1000)
        #expect(SIPContact.parseQ("0.001") == 1)
        #expect(SIPContact.parseQ("1.5") == nil)
        #expect(SIPContact.parseQ("0.12345") == nil)
        #expect(SIPContact.parseQ("x") == nil)
        #expect(SIPContact.formatQ(500) == "0.5")
        #expect(SIPContact.formatQ(1000) == "1")
        #expect(SIPContact.formatQ(25) == "0.025")
    }
}

@Suite struct SIPFramingTests {
    func frame(_ s: String, limits: SIPParserLimits = .default) -> SIPFraming.Frame {
        Array(s.utf8).withUnsafeBytes { SIPFraming.frame($0, limits: limits) }
    }

    @Test func completeAndSplitMessages() {
        let msg = Fixtures.rfcInvite
        let total = msg.utf8.count
        #expect(frame(msg) == .message(headBytes: total - 144, bodyBytes: 144))
        #expect(frame(String(msg.dropLast(1))) == .needMoreData)
        #expect(frame(String(msg.prefix(30))) == .needMoreData)
        #expect(frame(msg + Fixtures.rfcRegister) == .message(headBytes: total - 144, bodyBytes: 144))
    }

    @Test func keepAlives() {
        #expect(frame("\r\n\r\n") == .ping(bytes: 4))
        #expect(frame("\r\n") == .needMoreData)
        #expect(frame("\r\nREGISTER") == .skip(bytes: 2))
    }

    @Test func capsAndErrors() {
        let noLength = Fixtures.rfcRegister.replacingOccurrences("Content-Length: 0\r\n", "")
        #expect(frame(noLength) == .error(SIPParseError(.missingContentLength)))
        #expect(frame(Fixtures.rfcRegister.replacingOccurrences("Content-Length: 0", "l: 3")) != .error(SIPParseError(.missingContentLength)))
        #expect(frame(Fixtures.rfcRegister.replacingOccurrences("Content-Length: 0", "Content-Length: -3")) == .error(SIPParseError(.invalidContentLength)))
        #expect(frame(Fixtures.rfcRegister.replacingOccurrences("Content-Length: 0", "Content-Length: 99999999")) == .error(SIPParseError(.messageTooLarge(limit: 65_536))))
        let endless = "REGISTER sip:a SIP/2.0\r\nX: " + String(repeating: "a", count: 2000)
        #expect(frame(endless, limits: .init(maxMessageBytes: 1000)) == .error(SIPParseError(.messageTooLarge(limit: 1000))))
    }
}
