import SIPTestSupport
import Testing
@testable import SIPMessage

func parseRequest(_ text: String, limits: SIPParserLimits = .default) throws -> SIPRequest {
    guard case .request(let r) = try SIPMessageParser(limits: limits).parse(text) else {
        Issue.record("not a request")
        throw SIPParseError(.badStartLine)
    }
    return r
}

func parseFault(_ text: String, limits: SIPParserLimits = .default) -> SIPParseError.Fault? {
    do {
        _ = try SIPMessageParser(limits: limits).parse(text)
        return nil
    } catch {
        return error.fault
    }
}

@Suite struct SIPMessageParserTests {
    @Test func rfcRegister() throws {
        let r = try parseRequest(Fixtures.rfcRegister)
        #expect(r.method == .register)
        #expect(r.uri.host == "registrar.biloxi.com")
        let via = try #require(try r.headers.topVia)
        #expect(via.transport == "UDP" && via.host == "bobspc.biloxi.com" && via.port == 5060)
        #expect(via.branch == "z9hG4bKnashds7" && via.hasMagicCookie)
        #expect(try r.headers.to?.uri.description == "sip:bob@biloxi.com")
        #expect(try r.headers.to?.displayName == "Bob")
        #expect(try r.headers.from?.tag == "456248")
        #expect(r.headers.callID == "843817637684230@998sdasdh09")
        #expect(try r.headers.cseq == SIPCSeq(sequence: 1826, method: .register))
        #expect(try r.headers.expires == 7200)
        #expect(try r.headers.maxForwards == 70)
        guard case .contacts(let list) = try r.headers.contact else { Issue.record("no contacts"); return }
        #expect(list.map(\.uri.description) == ["sip:bob@192.0.2.4"])
    }

    @Test func rfcResponse() throws {
        guard case .response(let r) = try SIPMessageParser().parse(Fixtures.rfcRegisterOK) else { Issue.record(); return }
        #expect(r.statusCode == 200 && r.reasonPhrase == "OK")
        #expect(try r.headers.topVia?.received == "192.0.2.4")
        #expect(try r.headers.to?.tag == "2493k59kd")
    }

    @Test func rfcInviteBody() throws {
        let r = try parseRequest(Fixtures.rfcInvite)
        #expect(r.body.count == 144)
        #expect(r.headers.contentType == "application/sdp")
        #expect(String(decoding: r.body, as: UTF8.self).hasPrefix("v=0\r\no=alice"))
    }

    @Test func baresip() throws {
        let r = try parseRequest(Fixtures.baresipTLS)
        #expect(r.uri.transport == "tls")
        let via = try #require(try r.headers.topVia)
        #expect(via.transport == "TLS" && via.hasRport && via.rport == nil)
        guard case .contacts(let c) = try r.headers.contact else { Issue.record(); return }
        #expect(c.count == 1)
        #expect(c[0].expires == 600)
        #expect(c[0].instance == "<urn:uuid:2b8acd00-0430-25b9-5543-0667182cd11f>")
        #expect(c[0].regID == 1)
        #expect(c[0].uri.transport == "tls")
        #expect(try r.headers.route.first?.uri.parameters.contains("lr") == true)
        #expect(r.headers.supported == ["gruu", "outbound", "path"])
        #expect(r.headers.splitValues("Allow").count == 10)
        #expect(r.headers.userAgent == "baresip v1.0.0 (x86_64/linux)")
    }

    @Test func linphone() throws {
        let r = try parseRequest(Fixtures.linphoneSIPS)
        #expect(r.uri.isSIPS)
        #expect(try r.headers.from?.displayName == "alice")
        #expect(try r.headers.to?.uri.isSIPS == true)
        #expect(r.headers.values(.accept) == ["application/sdp", "text/plain"])
        guard case .contacts(let c) = try r.headers.contact else { Issue.record(); return }
        #expect(c[0].uri.isSIPS && c[0].address.displayName == "alice")
    }

    /// Net::SIP writes lower-case header names and bare addr-spec From/To.
    @Test func netSIPLowercaseAndAddrSpec() throws {
        let r = try parseRequest(Fixtures.netSIP)
        #expect(r.headers.callID == "b43f2c55c61a3ed41b139fb7f6835f20")
        #expect(try r.headers.cseq?.sequence == 1)
        let from = try #require(try r.headers.from)
        #expect(from.uri.description == "sip:alice@example.com")
        #expect(from.tag == "14976d10ec03504ac7e58eac75f148a5")
        #expect(try r.headers.to?.tag == nil)
        #expect(try r.headers.maxForwards == 70)
        #expect(try r.headers.topVia?.hasRport == false)
    }

    @Test func netSIPBracketedRequestURIIsBadRequestURI() {
        #expect(parseFault(Fixtures.netSIPBracketed) == .badRequestURI)
    }

    @Test func compactForms() throws {
        let text = SIPText.crlf("""
        REGISTER sip:example.com SIP/2.0
        v: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1
        f: <sip:a@example.com>;tag=1
        t: <sip:a@example.com>
        i: abc
        CSeq: 1 REGISTER
        m: <sip:a@10.0.0.1>, <sip:a@10.0.0.2>;q=0.5
        k: path
        l: 0


        """)
        let r = try parseRequest(text)
        #expect(r.headers.callID == "abc")
        #expect(r.headers.supported == ["path"])
        guard case .contacts(let c) = try r.headers.contact else { Issue.record(); return }
        #expect(c.count == 2 && c[1].qValue == 500)
        let out = String(decoding: r.serialized(), as: UTF8.self)
        #expect(out.contains("\r\nCall-ID: abc\r\n"))
        #expect(out.contains("\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1\r\n"))
    }

    @Test func foldingAndOddWhitespace() throws {
        let text = "\r\n\r\nREGISTER sip:example.com SIP/2.0\r\n"
            + "Via: SIP/2.0/UDP 10.0.0.1\r\n   ;branch=z9hG4bK1\r\n"
            + "From:<sip:a@example.com>;tag=1\r\n"
            + "To   :\t<sip:a@example.com>  \r\n"
            + "Subject: one\r\n\ttwo\r\n  three\r\n"
            + "Call-ID: abc\r\nCSeq:   7    REGISTER\r\nContent-Length: 0\r\n\r\n"
        let r = try parseRequest(text)
        #expect(r.headers["Subject"] == "one two three")
        #expect(try r.headers.topVia?.branch == "z9hG4bK1")
        #expect(try r.headers.to?.uri.user == "a")
        #expect(try r.headers.cseq?.sequence == 7)
    }

    @Test func multiValueSplittingRespectsQuotesAndBrackets() throws {
        let text = SIPText.crlf("""
        REGISTER sip:example.com SIP/2.0
        Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1, SIP/2.0/TCP 10.0.0.2;branch=z9hG4bK2
        Via: SIP/2.0/TLS [::1]:5061;branch=z9hG4bK3
        From: <sip:a@example.com>;tag=1
        To: <sip:a@example.com>
        Call-ID: abc
        CSeq: 1 REGISTER
        Contact: "Smith, John" <sip:a@10.0.0.1;x=1>;expires=30, <sip:b@10.0.0.2>
        Contact: <sip:c@10.0.0.3>
        Content-Length: 0


        """)
        let r = try parseRequest(text)
        let vias = try r.headers.via
        #expect(vias.map(\.transport) == ["UDP", "TCP", "TLS"])
        #expect(vias[2].host == "[::1]" && vias[2].port == 5061)
        guard case .contacts(let c) = try r.headers.contact else { Issue.record(); return }
        #expect(c.map { $0.uri.user ?? "" } == ["a", "b", "c"])
        #expect(c[0].address.displayName == "Smith, John")
        #expect(c[0].expires == 30)
    }

    @Test func wildcardContact() throws {
        let text = Fixtures.rfcRegister.replacingOccurrences("Contact: <sip:bob@192.0.2.4>", "Contact: *")
        let r = try parseRequest(text)
        #expect(try r.headers.contact == .wildcard)
        let mixed = Fixtures.rfcRegister.replacingOccurrences("Contact: <sip:bob@192.0.2.4>", "Contact: *, <sip:a@b>")
        #expect(throws: SIPParseError(.invalidHeaderValue("Contact"))) { try parseRequest(mixed).headers.contact }
    }

    @Test func unknownHeadersAndSchemesAreKept() throws {
        let text = Fixtures.rfcRegister.replacingOccurrences("Expires: 7200", "X-Custom-Thing: yes; really\r\nP-Weird: <urn:x:y>")
            .replacingOccurrences("REGISTER sip:registrar.biloxi.com", "REGISTER sip:registrar.biloxi.com")
            .replacingOccurrences("Contact: <sip:bob@192.0.2.4>", "Contact: <tel:+15551234>")
        let r = try parseRequest(text)
        #expect(r.headers["x-custom-thing"] == "yes; really")
        guard case .contacts(let c) = try r.headers.contact else { Issue.record(); return }
        #expect(c[0].uri.scheme == "tel")
    }

    @Test func longValuesWithinLimits() throws {
        let long = String(repeating: "a", count: 8000)
        let text = Fixtures.rfcRegister.replacingOccurrences("Expires: 7200", "X-Long: \(long)")
        let r = try parseRequest(text)
        #expect(r.headers["X-Long"]?.count == 8000)
    }

    @Test func datagramWithoutContentLengthTakesRest() throws {
        let text = Fixtures.rfcInvite.replacingOccurrences("Content-Length: 144\r\n", "")
        let r = try parseRequest(text)
        #expect(r.body.count == 144)
    }

    @Test func extraBytesAfterContentLengthAreDropped() throws {
        let r = try parseRequest(Fixtures.rfcRegister + "garbage")
        #expect(r.body.isEmpty)
    }

    // MARK: Every error path names its fault

    @Test func errorFaults() {
        let reg = Fixtures.rfcRegister
        #expect(parseFault("") == .empty)
        #expect(parseFault("\r\n\r\n") == .empty)
        #expect(parseFault("HELLO\r\n\r\n") == .badStartLine)
        #expect(parseFault("REGISTER sip:a SIP/2.0 extra\r\n\r\n") == .badStartLine)
        #expect(parseFault("REG{STER sip:a SIP/2.0\r\n\r\n") == .badStartLine)
        #expect(parseFault(reg.replacingOccurrences("SIP/2.0\r\nVia", "SIP/3.0\r\nVia")) == .unsupportedVersion("SIP/3.0"))
        #expect(parseFault(reg.replacingOccurrences("sip:registrar.biloxi.com SIP", "sip:bad host SIP")) == .badStartLine)
        #expect(parseFault(reg.replacingOccurrences("sip:registrar.biloxi.com SIP", "sip:[bad SIP")) == .badRequestURI)
        #expect(parseFault("SIP/2.0 2x0 OK\r\n\r\n") == .badStatusCode)
        #expect(parseFault(reg.replacingOccurrences("Max-Forwards: 70\r\n", "")) == nil)
        #expect(parseFault(reg.replacingOccurrences("To: Bob <sip:bob@biloxi.com>\r\n", "")) == .missingHeader("To"))
        #expect(parseFault(reg.replacingOccurrences("From: Bob <sip:bob@biloxi.com>;tag=456248\r\n", "")) == .missingHeader("From"))
        #expect(parseFault(reg.replacingOccurrences("Call-ID: 843817637684230@998sdasdh09\r\n", "")) == .missingHeader("Call-ID"))
        #expect(parseFault(reg.replacingOccurrences("CSeq: 1826 REGISTER\r\n", "")) == .missingHeader("CSeq"))
        #expect(parseFault(reg.replacingOccurrences("Via: SIP/2.0/UDP bobspc.biloxi.com:5060;branch=z9hG4bKnashds7\r\n", "")) == .missingHeader("Via"))
        #expect(parseFault(reg.replacingOccurrences("CSeq: 1826 REGISTER", "CSeq: 1826 INVITE")) == .cseqMethodMismatch)
        #expect(parseFault(reg.replacingOccurrences("CSeq: 1826 REGISTER", "CSeq: x REGISTER")) == .invalidCSeq)
        #expect(parseFault(reg.replacingOccurrences("CSeq: 1826 REGISTER", "CSeq: 4294967296 REGISTER")) == .invalidCSeq)
        #expect(parseFault(reg.replacingOccurrences("Content-Length: 0", "Content-Length: abc")) == .invalidContentLength)
        #expect(parseFault(reg.replacingOccurrences("Content-Length: 0", "Content-Length: -1")) == .invalidContentLength)
        #expect(parseFault(reg.replacingOccurrences("Content-Length: 0", "Content-Length: 10")) == .contentLengthBeyondMessage)
        #expect(parseFault(reg.replacingOccurrences("Expires: 7200", "Exp ires: 7200")) == .invalidHeaderName)
        #expect(parseFault(reg.replacingOccurrences("Expires: 7200", "Exp\u{1}ires: 7200")) == .invalidHeaderName)
        #expect(parseFault(reg.replacingOccurrences("Expires: 7200", ": 7200")) == .invalidHeaderName)
        #expect(parseFault(reg.replacingOccurrences("Expires: 7200", "Expires 7200")) == .malformedHeaderLine)
        #expect(parseFault("REGISTER sip:a SIP/2.0\r\n folded-first\r\n\r\n") == .malformedHeaderLine)
        #expect(parseFault(reg, limits: .init(maxMessageBytes: 100)) == .messageTooLarge(limit: 100))
        #expect(parseFault(reg, limits: .init(maxHeaderCount: 5)) == .tooManyHeaders(limit: 5))
        #expect(parseFault(reg, limits: .init(maxLineBytes: 40)) == .lineTooLong(limit: 40))
        var bad = Array(reg.utf8)
        bad.insert(0xFF, at: 30)
        #expect((try? SIPMessageParser().parse(bad)) == nil)
        do { _ = try SIPMessageParser().parse(bad) } catch { #expect(error.fault == .invalidUTF8) }
    }

    @Test func errorsCarryStatusAndReason() {
        #expect(SIPParseError(.missingHeader("Call-ID")).description == "400 Missing Call-ID Header")
        #expect(SIPParseError(.unsupportedVersion("SIP/3.0")).statusCode == 505)
        #expect(SIPParseError(.messageTooLarge(limit: 1)).statusCode == 513)
        #expect(SIPParseError(.cseqMethodMismatch).reasonPhrase == "CSeq Method Does Not Match Request Method")
    }

    @Test func partialHeadersAllowAnAnswer() throws {
        let text = Fixtures.rfcRegister.replacingOccurrences("CSeq: 1826 REGISTER", "CSeq: 1826 INVITE")
        do {
            _ = try SIPMessageParser().parse(text)
            Issue.record("should fail")
        } catch {
            let response = try #require(SIPResponse(answering: error.partialHeaders, statusCode: error.statusCode,
                                                    reasonPhrase: error.reasonPhrase, toTag: "x"))
            let out = String(decoding: response.serialized(), as: UTF8.self)
            #expect(out.hasPrefix("SIP/2.0 400 CSeq Method Does Not Match Request Method\r\n"))
            #expect(out.contains("To: Bob <sip:bob@biloxi.com>;tag=x\r\n"))
        }
    }

    @Test func typedHeadersReportMalformedValues() throws {
        let r = try parseRequest(Fixtures.rfcRegister.replacingOccurrences("Expires: 7200", "Expires: soon\r\nMin-Expires: 60\r\nRetry-After: 120 (maintenance);duration=60\r\nWarning: 380 example.com \"SIPS Not Allowed\", 399 x \"y\"\r\nAuthorization: Digest username=\"bob\", realm=\"biloxi.com\", nonce=\"a,b\", uri=\"sip:biloxi.com\", response=\"0123\", algorithm=SHA-256, qop=auth, nc=00000001, cnonce=\"c\"\r\nDate: Sat, 13 Nov 2010 23:29:00 GMT"))
        #expect(throws: SIPParseError(.invalidHeaderValue("Expires"))) { try r.headers.expires }
        #expect(try r.headers.minExpires == 60)
        let ra = try #require(try r.headers.retryAfter)
        #expect(ra.seconds == 120 && ra.comment == "maintenance" && ra.parameters.value("duration") == "60")
        let w = try r.headers.warning
        #expect(w.count == 2 && w[0].code == 380 && w[0].text == "SIPS Not Allowed")
        let auth = try #require(try r.headers.authorization.first)
        #expect(auth.scheme == "Digest" && auth["nonce"] == "a,b" && auth["algorithm"] == "SHA-256" && auth["NC"] == "00000001")
        #expect(r.headers.date == "Sat, 13 Nov 2010 23:29:00 GMT")
    }
}

extension String {
    func replacingOccurrences(_ target: String, _ replacement: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: target) {
            out += rest[rest.startIndex..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        out += rest
        return out
    }
}
