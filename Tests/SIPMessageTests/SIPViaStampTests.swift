import Testing
@testable import SIPMessage

/// The top Via's `rport` and `received` (RFC 3581 4, RFC 3261 18.2.1) written into the
/// client's own text, and the cases that are left to the parsed Via instead.
@Suite struct SIPViaStampTests {
    @Test func fillsAValuelessRportAndAppendsReceived() {
        #expect(SIPVia.stampedText("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport", rport: "4321", received: "192.0.2.7")
                == "SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1;rport=4321;received=192.0.2.7")
        #expect(SIPVia.stampedText("SIP/2.0/TLS h.invalid;rport;branch=z9hG4bK2", rport: "9", received: nil)
                == "SIP/2.0/TLS h.invalid;rport=9;branch=z9hG4bK2")
        // Spaces around `;` and a name in capitals, as RFC 4475 3.1.1.1 writes them.
        #expect(SIPVia.stampedText(" SIP/2.0/UDP h ; RPORT ; branch=z9hG4bK3 ", rport: "7", received: "::1")
                == "SIP/2.0/UDP h ; RPORT=7 ; branch=z9hG4bK3;received=::1")
        #expect(SIPVia.stampedText("SIP/2.0/UDP h;branch=z9hG4bK4", rport: nil, received: "192.0.2.8")
                == "SIP/2.0/UDP h;branch=z9hG4bK4;received=192.0.2.8")
    }

    @Test func leavesWhatItCannotEditSafely() {
        // No valueless rport to fill: a parameter that only starts with the name, a value, a quote.
        #expect(SIPVia.stampedText("SIP/2.0/UDP h;rportx;branch=z9hG4bK5", rport: "1", received: nil) == nil)
        #expect(SIPVia.stampedText("SIP/2.0/UDP h;rport=5;branch=z9hG4bK6", rport: "1", received: nil) == nil)
        #expect(SIPVia.stampedText("SIP/2.0/UDP h;x=\"a;rport\";branch=z9hG4bK7", rport: "1", received: nil) == nil)
        // A branch whose value holds the letters is not the parameter.
        #expect(SIPVia.stampedText("SIP/2.0/UDP h;branch=z9hG4bKrport", rport: "1", received: nil) == nil)
    }

    @Test func theEditedTextParsesToTheStampedVia() throws {
        let text = try #require(SIPVia.stampedText("SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK8;rport", rport: "4321",
                                                   received: "192.0.2.7"))
        let via = try #require(SIPVia.parse(Substring(text)))
        #expect(via.rport == 4321 && via.received == "192.0.2.7" && via.branch == "z9hG4bK8")
    }
}
