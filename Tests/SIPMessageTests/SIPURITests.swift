import Testing
@testable import SIPMessage

@Suite struct SIPURITests {
    @Test func parsesAllParts() throws {
        let uri = try #require(SIPURI("sips:alice:secret@[2001:db8::1]:5061;transport=tls;lr;maddr=239.255.255.1?subject=project%20x&priority=urgent"))
        #expect(uri.scheme == "sips")
        #expect(uri.user == "alice")
        #expect(uri.password == "secret")
        #expect(uri.host == "[2001:db8::1]")
        #expect(uri.hostName == "2001:db8::1")
        #expect(uri.isIPv6)
        #expect(uri.port == 5061)
        #expect(uri.transport == "tls")
        #expect(uri.parameters["lr"] == .some(nil))
        #expect(uri.parameters.value("maddr") == "239.255.255.1")
        #expect(uri.headers.map(\.name) == ["subject", "priority"])
        #expect(uri.headers[0].value == "project%20x")
    }

    @Test func parsesIPv4AndNames() throws {
        let a = try #require(SIPURI("sip:192.0.2.4"))
        #expect(a.user == nil && a.host == "192.0.2.4" && a.port == nil)
        let b = try #require(SIPURI("sip:+1-212-555-1212:1234@gateway.com;user=phone"))
        #expect(b.user == "+1-212-555-1212" && b.password == "1234" && b.parameters.value("user") == "phone")
    }

    @Test func unescapesUserAndReescapes() throws {
        let uri = try #require(SIPURI("sip:%61lice%20smith@atlanta.com"))
        #expect(uri.user == "alice smith")
        #expect(uri.description == "sip:alice%20smith@atlanta.com")
        #expect(SIPURI(uri.description) == uri)
    }

    @Test func keepsOtherSchemesOpaque() throws {
        let tel = try #require(SIPURI("tel:+1-201-555-0123;phone-context=example.com"))
        #expect(tel.scheme == "tel" && !tel.isSIP)
        #expect(tel.opaque == "+1-201-555-0123;phone-context=example.com")
        #expect(tel.description == "tel:+1-201-555-0123;phone-context=example.com")
        let mail = try #require(SIPURI("mailto:alice@example.com"))
        #expect(mail.scheme == "mailto")
        let urn = try #require(SIPURI("urn:uuid:2b8acd00-0430-25b9-5543-0667182cd11f"))
        #expect(urn.opaque == "uuid:2b8acd00-0430-25b9-5543-0667182cd11f")
    }

    @Test(arguments: [
        "sip:alice@atlanta.com",
        "sips:alice@atlanta.com;transport=tcp",
        "sip:alice:pw@atlanta.com:5060;maddr=10.0.0.1;lr?subject=x&h=y",
        "sip:[::1]:5061;transport=tls",
        "sip:+1-212-555-1212@gw.com;user=phone",
        "tel:+1-201-555-0123",
    ])
    func roundTrips(text: String) throws {
        let uri = try #require(SIPURI(text))
        #expect(uri.description == text)
        #expect(SIPURI(uri.description) == uri)
    }

    @Test(arguments: [
        "", "sip:", "alice@example.com", "sip:alice@", "sip:alice@host:99999", "sip:alice@host:", "sip:al ice@host",
        "sip:[::1", "sip:host;=x", "sip:host?x", "sip:host:5060x", "1sip:host", "sip:<host>", "sip:%zz@host",
    ])
    func rejectsMalformed(text: String) {
        #expect(SIPURI(text) == nil)
    }

    /// RFC 3261 19.1.4: the equivalent pairs.
    @Test(arguments: [
        ("sip:%61lice@atlanta.com;transport=TCP", "sip:alice@AtLanTa.CoM;Transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;newparam=5"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com;security=on"),
        ("sip:carol@chicago.com;newparam=5", "sip:carol@chicago.com;security=on"),
        ("sip:biloxi.com;transport=tcp;method=REGISTER?to=sip:bob%40biloxi.com", "sip:biloxi.com;method=REGISTER;transport=tcp?to=sip:bob%40biloxi.com"),
        ("sip:alice@atlanta.com?subject=project%20x&priority=urgent", "sip:alice@atlanta.com?priority=urgent&subject=project%20x"),
    ])
    func equivalent(a: String, b: String) throws {
        let x = try #require(SIPURI(a)), y = try #require(SIPURI(b))
        #expect(x.isEquivalent(to: y))
        #expect(y.isEquivalent(to: x))
    }

    /// RFC 3261 19.1.4: the non-equivalent pairs.
    @Test(arguments: [
        ("SIP:ALICE@AtLanTa.CoM;Transport=udp", "sip:alice@AtLanTa.CoM;Transport=UDP"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:5060"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com;transport=udp"),
        ("sip:bob@biloxi.com", "sip:bob@biloxi.com:6000;transport=tcp"),
        ("sip:carol@chicago.com", "sip:carol@chicago.com?Subject=next%20meeting"),
        ("sip:bob@phone21.boxesbybob.com", "sip:bob@192.0.2.4"),
        ("sip:alice@atlanta.com", "sips:alice@atlanta.com"),
        ("sip:alice:pw@atlanta.com", "sip:alice@atlanta.com"),
        ("sip:carol@chicago.com;security=on", "sip:carol@chicago.com;security=off"),
    ])
    func notEquivalent(a: String, b: String) throws {
        let x = try #require(SIPURI(a)), y = try #require(SIPURI(b))
        #expect(!x.isEquivalent(to: y))
        #expect(!y.isEquivalent(to: x))
    }
}

@Suite struct NameAddressTests {
    @Test func quotedDisplayName() throws {
        let a = try #require(NameAddress.parse("\"Alice \\\"A\\\" Smith\" <sip:alice@example.com>;tag=1"))
        #expect(a.displayName == "Alice \"A\" Smith")
        #expect(a.uri.user == "alice")
        #expect(a.tag == "1")
    }

    @Test func tokenDisplayName() throws {
        let a = try #require(NameAddress.parse("Bob <sip:bob@biloxi.com>"))
        #expect(a.displayName == "Bob")
        #expect(a.description == "Bob <sip:bob@biloxi.com>")
    }

    /// RFC 3261 20.10: in the addr-spec form, `;params` belong to the header.
    @Test func addrSpecParametersBelongToHeader() throws {
        let a = try #require(NameAddress.parse("sip:alice@example.com;tag=14976d10"))
        #expect(a.uri.description == "sip:alice@example.com")
        #expect(a.uri.parameters.isEmpty)
        #expect(a.tag == "14976d10")
        let b = try #require(NameAddress.parse("<sip:alice@example.com;transport=tcp>;expires=60"))
        #expect(b.uri.transport == "tcp")
        #expect(b.parameters.value("expires") == "60")
    }

    @Test func quotedParameterKeepsQuotes() throws {
        let a = try #require(NameAddress.parse("<sip:a@b>;+sip.instance=\"<urn:uuid:1;x>\";reg-id=1"))
        #expect(a.parameters.value("+sip.instance") == "\"<urn:uuid:1;x>\"")
        #expect(a.parameters.unquotedValue("+sip.instance") == "<urn:uuid:1;x>")
        #expect(a.description == "<sip:a@b>;+sip.instance=\"<urn:uuid:1;x>\";reg-id=1")
    }

    @Test(arguments: ["", "<sip:a@b", "\"unterminated <sip:a@b>", "Bob sip:a@b", "<sip:a@b>junk", "<sip:a@b>;=x", "<notauri>"])
    func rejectsMalformed(text: String) {
        #expect(NameAddress.parse(text) == nil)
    }

    /// The parameters alone (what a proxy reads of To and From) are those of the full parse,
    /// for every form: quoted and token display names, addr-spec, `;` and `>` inside quotes.
    @Test(arguments: [
        "\"Alice \\\"A\\\" <x>\" <sip:alice@example.com;lr>;tag=1", "Bob <sip:bob@biloxi.com>",
        "sip:alice@example.com;tag=14976d10", "<sip:a@b;transport=tcp>;expires=60;TAG = x",
        "<sip:a@b>;+sip.instance=\"<urn:uuid:1;x>\";reg-id=1", "  <sip:a@b>  ",
    ])
    func parametersAloneMatchTheFullParse(text: String) throws {
        let full = try #require(NameAddress.parse(text))
        #expect(NameAddress.parameters(of: Substring(text)) == full.parameters)
    }

    /// Malformed framing or parameters are refused; a URI that is not one is not looked at.
    @Test func parametersAloneRefuseBrokenFraming() {
        for text in ["", "<sip:a@b", "\"unterminated <sip:a@b>", "<sip:a@b>junk", "<sip:a@b>;=x"] {
            #expect(NameAddress.parameters(of: Substring(text)) == nil, "\(text)")
        }
        #expect(NameAddress.parameters(of: "<notauri>;tag=7")?.value("tag") == "7")
        #expect(NameAddress.parameters(of: "Bob sip:a@b") == SIPParameters())
    }

    @Test func headerTagsWithoutParsingTheURI() throws {
        let h: SIPHeaders = [(.from, "\"A\" <sip:a@example.com>;tag=abc"), (.to, "<sip:b@example.com>")]
        #expect(try h.tag(.from) == "abc")
        #expect(try h.tag(.to) == nil)
        #expect(try SIPHeaders().tag(.to) == nil)
        let bad: SIPHeaders = [(.to, "<sip:b@example.com>;=x")]
        #expect(throws: SIPParseError.self) { try bad.tag(.to) }
    }
}

@Suite struct HeaderListTests {
    /// The first value found without splitting the rest is the first of the full split, for
    /// commas inside quotes and angle brackets, empty pieces and surrounding whitespace.
    @Test(arguments: [
        "SIP/2.0/UDP a;branch=z9hG4bK1, SIP/2.0/UDP b;branch=z9hG4bK2", " , ,SIP/2.0/UDP a ", "",
        "\"x, y\" <sip:a@b;lr>, <sip:c@d>", "<sip:a@b?h=1,2>;p=\"q,r\",<sip:c@d>", "   ",
    ])
    func firstOfListIsTheFirstOfTheSplit(text: String) {
        #expect(SIPHeaders.firstOfList(Substring(text)) == SIPHeaders.splitList(Substring(text)).first)
    }
}
