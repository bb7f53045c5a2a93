import SIPMessage
import Testing
@testable import SIPProxy

@Suite("Forwarding a branch (RFC 3261 16.6, 16.7 step 3, RFC 5658)")
struct ForwardingTests {
    let bob = ProxyFixtures.target("sip:bob@198.51.100.7:5062")

    @Test func branchRequestRewritesURIAndAddsOurVia() throws {
        let v = ProxyFixtures.validated(ProxyFixtures.invite())
        let out = ProxyForwarding.branchRequest(v, target: bob, index: 2, via: ProxyFixtures.udpLeg, recordRoute: nil)
        #expect(out.uri.description == "sip:bob@198.51.100.7:5062")
        let vias = try out.headers.via
        #expect(vias.count == 2)
        #expect(vias[0].host == "192.0.2.1" && vias[0].port == 5060 && vias[0].transport == "UDP")
        #expect(vias[0].branch == v.branchKey.branch(index: 2))
        #expect(vias[0].hasMagicCookie)
        #expect(vias[1].branch == "z9hG4bKnashds8")
        #expect(out.headers[.maxForwards] == "69")
    }

    @Test func branchIsStableAcrossRetransmissions() throws {
        let a = try ProxyBranchKey(request: ProxyFixtures.invite())
        let b = try ProxyBranchKey(request: ProxyFixtures.invite())
        #expect(a == b)
        #expect(a.branch(index: 0) != a.branch(index: 1))
        // Another client transaction (another top branch) gives another transaction hash,
        // while the loop hash (routing inputs only) stays.
        let c = try ProxyBranchKey(request: ProxyFixtures.invite(branch: "z9hG4bKother"))
        #expect(c.transactionHash != a.transactionHash)
        #expect(c.loopHash == a.loopHash)
        // The method is not hashed: a CANCEL of this INVITE gets the same branch (16.6 step 8).
        let cancel = try ProxyBranchKey(request: ProxyFixtures.invite(method: "CANCEL"))
        #expect(cancel == a)
    }

    @Test func rfc2543BranchIsStableToo() throws {
        let a = try ProxyBranchKey(request: ProxyFixtures.invite(branch: "old1"))
        let b = try ProxyBranchKey(request: ProxyFixtures.invite(branch: "old1"))
        #expect(a == b)
    }

    @Test func branchParsesBack() throws {
        let key = try ProxyBranchKey(request: ProxyFixtures.invite())
        let parsed = ProxyBranchKey.parse(key.branch(index: 17))
        #expect(parsed?.key == key && parsed?.index == 17)
        #expect(ProxyBranchKey.parse("z9hG4bKnashds8") == nil)
        #expect(ProxyBranchKey.parse(ProxyBranchKey.prefix + "zz") == nil)
    }

    /// The branch as written: prefix, 16 + 16 lowercase hex digits, `.`, the index; anything
    /// else after the prefix (upper case, a sign, a missing index, junk) is not ours.
    @Test func branchTextIsExact() {
        let key = ProxyBranchKey(loop: 0x0123_4567_89AB_CDEF, transaction: 0xFEDC_BA98_7654_3210)
        let text = key.branch(index: 0)
        #expect(text == "z9hG4bKsp0123456789abcdeffedcba9876543210.0")
        #expect(key.loopHash == "0123456789abcdef" && key.transactionHash == "fedcba9876543210")
        #expect(ProxyBranchKey.parse(key.branch(index: 123_456))?.index == 123_456)
        let p = ProxyBranchKey.prefix
        for bad in [p + "0123456789ABCDEFfedcba9876543210.0", p + "0123456789abcdeffedcba9876543210.",
                    p + "0123456789abcdeffedcba9876543210.+1", p + "0123456789abcdeffedcba9876543210x0",
                    p + "0123456789abcdeffedcba987654321.0", p + "0123456789abcdeffedcba9876543210.1x"] {
            #expect(ProxyBranchKey.parse(bad) == nil, "\(bad)")
        }
    }

    @Test func singleRecordRouteOnTheSameLeg() {
        let v = ProxyFixtures.validated(ProxyFixtures.invite(extra: "Record-Route: <sip:p2.atlanta.com;lr>"))
        let plan = RecordRoutePlan(inbound: ProxyFixtures.udpLeg, inboundToken: "IN", outbound: ProxyFixtures.udpLeg,
                                   outboundToken: "OUT")
        let out = ProxyForwarding.branchRequest(v, target: bob, index: 0, via: ProxyFixtures.udpLeg, recordRoute: plan)
        #expect(out.headers.values(.recordRoute) == ["<sip:OUT@192.0.2.1:5060;lr>", "<sip:p2.atlanta.com;lr>"])
    }

    @Test func doubleRecordRouteWhenTransportsDiffer() {
        let v = ProxyFixtures.validated(ProxyFixtures.invite())
        let plan = RecordRoutePlan(inbound: ProxyFixtures.udpLeg, inboundToken: "IN", outbound: ProxyFixtures.tlsLeg,
                                   outboundToken: "OUT")
        let tlsBob = ProxyFixtures.target("sip:bob@198.51.100.7;transport=tls", transport: .tls)
        let out = ProxyForwarding.branchRequest(v, target: tlsBob, index: 0, via: ProxyFixtures.tlsLeg, recordRoute: plan)
        // Top faces the callee (TLS), the second the caller (UDP).
        #expect(out.headers.values(.recordRoute) == [
            "<sip:OUT@192.0.2.1:5061;transport=tls;lr>", "<sip:IN@192.0.2.1:5060;lr>",
        ])
        #expect((try? out.headers.topVia)??.transport == "TLS")
    }

    @Test func sipsRequestGetsSIPSRecordRoutes() {
        let v = ProxyFixtures.validated(ProxyFixtures.invite(uri: "sips:bob@example.com"))
        let plan = RecordRoutePlan(inbound: ProxyFixtures.tlsLeg, outbound: ProxyFixtures.tlsLeg, forceDouble: true)
        let t = ProxyFixtures.target("sips:bob@198.51.100.7", transport: .tls)
        let out = ProxyForwarding.branchRequest(v, target: t, index: 0, via: ProxyFixtures.tlsLeg, recordRoute: plan)
        #expect(out.headers.values(.recordRoute) == ["<sips:192.0.2.1:5061;lr>", "<sips:192.0.2.1:5061;lr>"])
    }

    @Test func ipv6LegIsBracketed() {
        let leg = ProxyLeg(transport: .tcp, host: "2001:db8::1", port: 5060)
        #expect(RecordRoutePlan.uri(leg: leg, token: "t", sips: false).description == "sip:t@[2001:db8::1]:5060;transport=tcp;lr")
        #expect(ProxyForwarding.viaValue(leg, branch: "z9hG4bK1").hasPrefix("SIP/2.0/TCP [2001:db8::1]:5060;branch="))
    }

    @Test func pathBecomesRoute() {
        let v = ProxyFixtures.validated(ProxyFixtures.invite())
        var t = bob
        t.path = ["<sip:edge.example.com;lr>"]
        let out = ProxyForwarding.branchRequest(v, target: t, index: 0, via: ProxyFixtures.udpLeg, recordRoute: nil)
        #expect(out.headers.values(.route) == ["<sip:edge.example.com;lr>"])
        #expect(out.uri == t.uri)
    }

    @Test func strictNextHopGetsRequestURIAsLastRoute() {
        let v = ProxyFixtures.validated(ProxyFixtures.invite(extra: "Route: <sip:strict.example.net>"))
        let out = ProxyForwarding.branchRequest(v, target: bob, index: 0, via: ProxyFixtures.udpLeg, recordRoute: nil)
        #expect(out.uri.description == "sip:strict.example.net")
        #expect(out.headers.values(.route) == ["<sip:bob@198.51.100.7:5062>"])
    }

    @Test func bodyIsUntouched() {
        var r = ProxyFixtures.invite()
        r.body = Array("v=0\r\n".utf8)
        let out = ProxyForwarding.branchRequest(ProxyFixtures.validated(r), target: bob, index: 0,
                                                via: ProxyFixtures.udpLeg, recordRoute: nil)
        #expect(out.body == r.body)
    }

    @Test func responseLosesOurViaOnly() throws {
        let v = ProxyFixtures.validated(ProxyFixtures.invite())
        let out = ProxyForwarding.branchRequest(v, target: bob, index: 3, via: ProxyFixtures.udpLeg, recordRoute: nil)
        let response = SIPResponse(to: out, statusCode: 180)
        let stripped = ProxyForwarding.stripOwnVia(response, identity: ProxyFixtures.identity)
        #expect(stripped?.branchIndex == 3)
        #expect(stripped?.branchKey == v.branchKey)
        #expect(stripped?.isForUs == false)
        #expect(try stripped?.response.headers.via.map(\.branch) == ["z9hG4bKnashds8"])
    }

    @Test func responseWithOnlyOurViaIsForUs() {
        let key = ProxyFixtures.validated(ProxyFixtures.invite()).branchKey
        var h = SIPHeaders()
        h.add(.via, ProxyForwarding.viaValue(ProxyFixtures.udpLeg, branch: key.branch(index: 0)))
        let stripped = ProxyForwarding.stripOwnVia(SIPResponse(statusCode: 200, headers: h), identity: ProxyFixtures.identity)
        #expect(stripped?.isForUs == true)
        #expect(stripped?.branchIndex == 0)
    }

    @Test func responseWithCombinedViaValue() throws {
        let key = ProxyFixtures.validated(ProxyFixtures.invite()).branchKey
        var h = SIPHeaders()
        h.add(.via, ProxyForwarding.viaValue(ProxyFixtures.udpLeg, branch: key.branch(index: 1)) + ", SIP/2.0/UDP a.example;branch=z9hG4bKa")
        let stripped = ProxyForwarding.stripOwnVia(SIPResponse(statusCode: 200, headers: h), identity: ProxyFixtures.identity)
        #expect(try stripped?.response.headers.via.map(\.host) == ["a.example"])
    }

    @Test func responseWithSomeoneElsesViaIsNotOurs() {
        var h = SIPHeaders()
        h.add(.via, "SIP/2.0/UDP a.example;branch=z9hG4bKa")
        h.add(.via, "SIP/2.0/UDP b.example;branch=z9hG4bKb")
        #expect(ProxyForwarding.stripOwnVia(SIPResponse(statusCode: 200, headers: h), identity: ProxyFixtures.identity) == nil)
    }
}

@Suite("Flow tokens (RFC 5626 5.3)")
struct FlowTokenTests {
    let codec = FlowTokenCodec(key: Array("node secret".utf8), mac: ProxyFixtures.testMAC)

    @Test(arguments: [
        FlowToken(flowID: 42, transport: .tls, host: "203.0.113.9", port: 49152),
        FlowToken(flowID: nil, transport: .udp, host: "2001:db8::7", port: 5060),
        FlowToken(flowID: .max, transport: .tcp, host: "", port: 0),
    ])
    func roundTrip(_ token: FlowToken) throws {
        let text = try #require(codec.encode(token))
        #expect(codec.decode(text) == token)
        // Fits the user part of a SIP URI unescaped.
        let uri = SIPURI(scheme: "sip", user: text, host: "192.0.2.1", parameters: ["lr": nil])
        #expect(SIPURI(uri.description)?.user == text)
        #expect(!uri.description.contains("%"))
    }

    @Test func forgeryIsRefused() throws {
        let text = try #require(codec.encode(FlowToken(flowID: 7, transport: .tls, host: "203.0.113.9", port: 5061)))
        // Another key's token.
        let other = FlowTokenCodec(key: Array("attacker".utf8), mac: ProxyFixtures.testMAC)
        let forged = try #require(other.encode(FlowToken(flowID: 8, transport: .tls, host: "203.0.113.9", port: 5061)))
        #expect(codec.decode(forged) == nil)
        // Every single-character change.
        var chars = Array(text)
        for i in chars.indices {
            let saved = chars[i]
            chars[i] = saved == "A" ? "B" : "A"
            #expect(codec.decode(String(chars)) == nil)
            chars[i] = saved
        }
        #expect(codec.decode(text.dropLast()) == nil)
        #expect(codec.decode("") == nil)
        #expect(codec.decode("not base64!") == nil)
    }

    @Test func shortMACIsRefusedAtEncoding() {
        let weak = FlowTokenCodec(key: [1], mac: { _, _ in [1, 2, 3] })
        #expect(weak.encode(FlowToken(flowID: 1, transport: .tcp, host: "h", port: 1)) == nil)
        #expect(weak.decode("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA") == nil)
    }

    @Test func namesTheArrivalFlow() {
        let tls = SIPSource(transport: .tls, remoteHost: "203.0.113.9", remotePort: 5061, flowID: 7)
        #expect(FlowToken(flowID: 7, transport: .tls, host: "x", port: 1).names(tls))
        #expect(!FlowToken(flowID: 8, transport: .tls, host: "203.0.113.9", port: 5061).names(tls))
        let udp = SIPSource(transport: .udp, remoteHost: "203.0.113.9", remotePort: 5060)
        #expect(FlowToken(source: udp).names(udp))
        #expect(!FlowToken(flowID: nil, transport: .udp, host: "203.0.113.9", port: 5062).names(udp))
    }

    @Test func inDialogRequestFindsTheOtherSidesFlow() throws {
        // Double record-routed: the callee's route set is [towards callee, towards caller].
        let callee = FlowToken(flowID: 2, transport: .tls, host: "203.0.113.2", port: 40000)
        let caller = FlowToken(flowID: 1, transport: .tls, host: "203.0.113.1", port: 40001)
        let toCallee = try #require(codec.encode(callee)), toCaller = try #require(codec.encode(caller))
        // The caller's BYE: Route = reverse order.
        let bye = ProxyFixtures.request("""
        BYE sip:bob@10.0.0.2 SIP/2.0
        Via: SIP/2.0/TLS 203.0.113.1:40001;branch=z9hG4bKbye1
        Max-Forwards: 70
        Route: <sip:\(toCaller)@192.0.2.1:5061;transport=tls;lr>, <sip:\(toCallee)@192.0.2.1:5061;transport=tls;lr>
        To: <sip:bob@example.com>;tag=b
        From: <sip:alice@example.com>;tag=a
        Call-ID: c1
        CSeq: 2 BYE
        Content-Length: 0


        """)
        let v = ProxyFixtures.validated(bye)
        let fromCaller = SIPSource(transport: .tls, remoteHost: "203.0.113.1", remotePort: 40001, flowID: 1)
        #expect(v.flowToken(arrivedOn: fromCaller, codec: codec) == callee)
        let fromCallee = SIPSource(transport: .tls, remoteHost: "203.0.113.2", remotePort: 40000, flowID: 2)
        #expect(v.flowToken(arrivedOn: fromCallee, codec: codec) == caller)
        // A forged token is ignored: route by the Request-URI.
        let forged = ProxyFixtures.validated(ProxyFixtures.invite(extra: "Route: <sip:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA@192.0.2.1;lr>"))
        #expect(forged.flowToken(arrivedOn: fromCaller, codec: codec) == nil)
    }
}

@Suite("Encodings without Foundation")
struct ProxyEncodingTests {
    @Test func base64urlRoundTripsEveryLength() {
        for n in 0..<20 {
            let bytes = (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 250) }
            let text = ProxyEncoding.base64url(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(ProxyEncoding.decodeBase64url(text) == bytes)
        }
        #expect(ProxyEncoding.base64url(Array("foobar".utf8)) == "Zm9vYmFy")
        #expect(ProxyEncoding.base64url([0xFB, 0xFF]) == "-_8")
    }

    @Test func nonCanonicalBase64IsRefused() {
        #expect(ProxyEncoding.decodeBase64url("Zg") == [0x66])
        #expect(ProxyEncoding.decodeBase64url("Zh") == nil)  // stray low bits
        #expect(ProxyEncoding.decodeBase64url("Z") == nil)
        #expect(ProxyEncoding.decodeBase64url("Zm9v=") == nil)
    }

    @Test func fnvIsTheStandardOne() {
        var h = FNV1a64()
        h.add(Array("a".utf8))
        #expect(ProxyEncoding.hex(h.value) == "af63dc4c8601ec8c")
        #expect(ProxyEncoding.constantTimeEquals([1, 2], [1, 2]))
        #expect(!ProxyEncoding.constantTimeEquals([1, 2], [1, 3]))
        #expect(!ProxyEncoding.constantTimeEquals([1], [1, 2]))
    }
}
