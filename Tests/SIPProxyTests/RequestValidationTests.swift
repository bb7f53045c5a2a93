import SIPMessage
import Testing
@testable import SIPProxy

@Suite("Request validation (RFC 3261 16.3, 16.4)")
struct RequestValidationTests {
    let validator = ProxyRequestValidator(identity: ProxyFixtures.identity)

    private func code(_ v: ProxyValidation) -> Int? {
        if case .reject(let r) = v { return r.statusCode }
        return nil
    }

    @Test func maxForwardsZeroIs483() {
        #expect(code(validator.validate(ProxyFixtures.invite(maxForwards: "0"))) == 483)
    }

    @Test func maxForwardsIsDecremented() {
        let v = ProxyFixtures.validated(ProxyFixtures.invite(maxForwards: "5"))
        #expect(v.request.headers[.maxForwards] == "4")
    }

    @Test func absentMaxForwardsBecomes70() {
        let v = ProxyFixtures.validated(ProxyFixtures.invite(maxForwards: nil))
        #expect(v.request.headers[.maxForwards] == "70")
    }

    @Test func malformedMaxForwardsIs400() {
        #expect(code(validator.validate(ProxyFixtures.invite(maxForwards: "many"))) == 400)
    }

    @Test func unknownSchemeIs416() {
        #expect(code(validator.validate(ProxyFixtures.invite(uri: "mailto:bob@example.com"))) == 416)
    }

    @Test func unsupportedProxyRequireIs420WithUnsupported() {
        let v = validator.validate(ProxyFixtures.invite(extra: "Proxy-Require: foo, bar"))
        guard case .reject(let r) = v else { Issue.record("not rejected"); return }
        #expect(r.statusCode == 420)
        #expect(r.headers[.unsupported] == "foo, bar")
        let supported = ProxyRequestValidator(identity: ProxyFixtures.identity, supportedProxyExtensions: ["foo", "bar"])
        #expect(code(supported.validate(ProxyFixtures.invite(extra: "Proxy-Require: foo, bar"))) == nil)
    }

    @Test func loopIs482() {
        let first = ProxyFixtures.validated(ProxyFixtures.invite())
        let out = ProxyForwarding.branchRequest(first, target: ProxyFixtures.target("sip:bob@example.com"), index: 0,
                                                via: ProxyFixtures.udpLeg, recordRoute: nil)
        // The request comes back to us unchanged (same Request-URI): a loop.
        var back = out
        back.headers.prepend(.via, "SIP/2.0/UDP other.example.net;branch=z9hG4bKxyz")
        #expect(code(validator.validate(back)) == 482)
    }

    @Test func spiralIsNotALoop() {
        let first = ProxyFixtures.validated(ProxyFixtures.invite())
        let out = ProxyForwarding.branchRequest(first, target: ProxyFixtures.target("sip:bob@192.0.2.99"), index: 0,
                                                via: ProxyFixtures.udpLeg, recordRoute: nil)
        // Comes back with another Request-URI: spiralling, forwarded.
        var back = out
        back.headers.prepend(.via, "SIP/2.0/UDP other.example.net;branch=z9hG4bKxyz")
        #expect(code(validator.validate(back)) == nil)
    }

    @Test func topRouteNamingUsIsRemoved() {
        let r = ProxyFixtures.invite(extra: "Route: <sip:tok@192.0.2.1:5060;lr>, <sip:next.example.net;lr>")
        let v = ProxyFixtures.validated(r)
        #expect(v.removedRoutes.map(\.user) == ["tok"])
        #expect(v.request.headers.values(.route) == ["<sip:next.example.net;lr>"])
        #expect(!v.wasStrictRouted)
    }

    @Test func bothDoubleRecordRouteEntriesAreRemoved() {
        let r = ProxyFixtures.invite(extra: "Route: <sips:a@192.0.2.1:5061;lr>\nRoute: <sip:b@192.0.2.1;transport=udp;lr>")
        let v = ProxyFixtures.validated(r)
        #expect(v.removedRoutes.map(\.user) == ["a", "b"])
        #expect(!v.request.headers.contains(.route))
    }

    @Test func strictRouterRequestURIIsRestored() {
        // A strict router put our Record-Route URI into the Request-URI and the remote target last.
        let r = ProxyFixtures.invite(extra: "Route: <sip:bob@pc99.example.com>", uri: "sip:tok@192.0.2.1;lr")
        let v = ProxyFixtures.validated(r)
        #expect(v.wasStrictRouted)
        #expect(v.request.uri.description == "sip:bob@pc99.example.com")
        #expect(!v.request.headers.contains(.route))
        #expect(v.receivedURI.description == "sip:tok@192.0.2.1;lr")
    }

    @Test func foreignRouteIsKept() {
        let r = ProxyFixtures.invite(extra: "Route: <sip:other.example.net;lr>")
        let v = ProxyFixtures.validated(r)
        #expect(v.removedRoutes.isEmpty)
        #expect(v.request.headers.values(.route) == ["<sip:other.example.net;lr>"])
    }
}
