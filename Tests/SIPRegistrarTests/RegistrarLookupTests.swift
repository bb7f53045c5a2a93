import SIPMessage
@testable import SIPRegistrar
import SIPTestSupport
import Testing

@Suite struct RegistrarSIPSTests {
    let clock = ManualRegistrarClock()

    func registrar() throws -> Registrar {
        try Registrar(configuration: RegistrarConfiguration(minExpires: 60, maxExpires: 3600), clock: clock)
    }

    @Test func sipsOverNonTLSIsRefused() async throws {
        let r = try registrar()
        for (ruri, to, contact) in [("sips:example.com", "<sip:alice@example.com>", "<sip:a@h>"),
                                    ("sip:example.com", "<sips:alice@example.com>", "<sip:a@h>"),
                                    ("sip:example.com", "<sip:alice@example.com>", "<sips:a@h>")] {
            var b = RegisterBuilder()
            b.requestURI = ruri
            b.to = to
            b.contacts = [contact]
            for source in [udp, tcp] {
                let response = try #require(try await r.send(b, from: source))
                #expect(response.statusCode == 403 && response.reasonPhrase == "SIPS Requires TLS")
            }
        }
        #expect(r.bindingCount == 0)
    }

    @Test func sipsContactNeedsSIPSRequestURIAndOnlySIPSContacts() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.requestURI = "sip:example.com"
        b.contacts = ["<sips:a@h>"]
        #expect(try await r.send(b, from: tls)?.statusCode == 400)
        b.requestURI = "sips:example.com"
        b.contacts = ["<sips:a@h>", "<sip:a@h2;transport=tls>"]
        #expect(try await r.send(b, from: tls)?.statusCode == 400)
        b.contacts = ["<sips:a@h>"]
        #expect(try await r.send(b, from: tls)?.statusCode == 200)
    }

    /// baresip with a sips: account keeps a sip:;transport=tls Contact: accepted, but a
    /// sips: lookup does not return it (RFC 5630).
    @Test func baresipSIPSAccountWithSIPContact() async throws {
        let r = try registrar()
        let req = try SIPText.request("""
        REGISTER sips:example.com SIP/2.0
        Via: SIP/2.0/TLS 127.0.0.1:35161;branch=z9hG4bKaa8332ea7e4356b2;rport
        Contact: <sip:alice-0x55@127.0.0.1:35161;transport=tls>;expires=600;+sip.instance="<urn:uuid:2b8a>";reg-id=1
        To: <sips:alice@example.com>
        From: <sips:alice@example.com>;tag=c932
        Call-ID: c7d6
        CSeq: 40208 REGISTER
        Supported: gruu, outbound, path
        Content-Length: 0


        """)
        #expect(await r.receive(req, from: tls).statusCode == 200)
        #expect(r.query("sips:alice@example.com").isEmpty)
        #expect(r.query("sip:alice@example.com") == ["sip:alice-0x55@127.0.0.1:35161;transport=tls"])
    }

    @Test func sipAndSIPSAORsAreOneAndLookupFilters() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.requestURI = "sips:example.com"
        b.to = "<sips:alice@example.com>"
        b.contacts = ["<sips:alice@192.0.2.10:5061>"]
        _ = try await r.send(b, from: tls)
        var u = RegisterBuilder()
        u.contacts = ["<sip:alice@192.0.2.10:5060>", "<tel:+15551234>", "<mailto:alice@example.com>"]
        u.callID = "udp-call"
        let response = try #require(try await r.send(u, from: udp))
        // The 200 lists every binding, non-SIP ones included.
        #expect(Set(response.contactList.map(\.uri)) == ["sips:alice@192.0.2.10:5061", "sip:alice@192.0.2.10:5060",
                                                         "tel:+15551234", "mailto:alice@example.com"])
        #expect(r.query("sips:alice@example.com") == ["sips:alice@192.0.2.10:5061"])
        #expect(Set(r.query("sip:alice@example.com")) == ["sips:alice@192.0.2.10:5061", "sip:alice@192.0.2.10:5060"])
        #expect(r.query("tel:+15551234").isEmpty)
        let tlsBinding = try #require(r.lookup("sips:alice@example.com").first)
        #expect(tlsBinding.transport == .tls && tlsBinding.flowID == 8 && tlsBinding.tlsIdentity == "sip:alice@example.com")
    }
}

@Suite struct RegistrarLookupTests {
    let clock = ManualRegistrarClock()

    @Test func orderedByQThenMostRecent() async throws {
        let r = try Registrar(configuration: RegistrarConfiguration(minExpires: 60, maxExpires: 3600), clock: clock)
        var b = RegisterBuilder()
        for (i, c) in ["<sip:a@h1>;q=0.5", "<sip:a@h2>;q=0.9", "<sip:a@h3>", "<sip:a@h4>;q=0.5"].enumerated() {
            b.contacts = [c]
            b.cseq = UInt32(i + 1)
            _ = try await r.send(b)
            clock.advance(seconds: 1)
        }
        #expect(r.query("sip:alice@example.com") == ["sip:a@h3", "sip:a@h2", "sip:a@h4", "sip:a@h1"])
    }

    @Test func expiredBindingIsNeverReturnedEvenBeforePurge() async throws {
        let r = try Registrar(configuration: RegistrarConfiguration(minExpires: 60, maxExpires: 3600), clock: clock)
        var b = RegisterBuilder()
        b.expires = 60
        _ = try await r.send(b)
        clock.advance(seconds: 59.9)
        #expect(r.query("sip:alice@example.com").count == 1)
        clock.advance(seconds: 0.1)
        #expect(r.query("sip:alice@example.com").isEmpty)
        #expect(r.bindingCount == 1)  // not purged yet
        let gone = await r.expire()
        #expect(gone.count == 1 && r.bindingCount == 0 && r.aorCount == 0)
    }

    @Test func expireIsDrivenByTheDispatcherTimer() async throws {
        let timers = ManualTimers()
        let r = try Registrar(configuration: RegistrarConfiguration(minExpires: 60, maxExpires: 3600), clock: clock, timers: timers)
        var b = RegisterBuilder()
        b.contacts = ["<sip:a@h1>;expires=120", "<sip:a@h2>;expires=600"]
        _ = try await r.send(b)
        #expect(timers.delays == [.seconds(120)])
        // A later expiry does not re-arm; an earlier one does.
        var c = RegisterBuilder()
        c.to = "<sip:bob@example.com>"
        c.expires = 60
        _ = try await r.send(c)
        #expect(timers.delays == [.seconds(60)])
        clock.advance(seconds: 60)
        timers.fireAll()
        for _ in 0..<200 where r.query("sip:bob@example.com").count + r.bindingCount > 2 { await Task.yield() }
        try await Task.sleep(for: .milliseconds(50))
        #expect(r.bindingCount == 2)
        #expect(timers.delays == [.seconds(60)])  // re-armed for h1 at 120 s
    }
}

@Suite struct RegistrarNonRegisterTests {
    let clock = ManualRegistrarClock()

    func invite(_ uri: String) throws -> SIPRequest {
        try SIPText.request("""
        INVITE \(uri) SIP/2.0
        Via: SIP/2.0/UDP 192.0.2.50;branch=z9hG4bKinv
        From: <sip:bob@example.org>;tag=1
        To: <\(uri)>
        Call-ID: inv-1
        CSeq: 1 INVITE
        Content-Length: 0


        """)
    }

    func registrar(_ mode: NonRegisterMode) async throws -> Registrar {
        let r = try Registrar(configuration: RegistrarConfiguration(minExpires: 60, maxExpires: 3600, nonRegisterMode: mode),
                              clock: clock)
        var b = RegisterBuilder()
        b.contacts = ["<sip:alice@192.0.2.10:5060>;q=0.8", "<sip:alice@192.0.2.11:5060>"]
        _ = try await r.send(b)
        return r
    }

    @Test func redirect() async throws {
        let r = try await registrar(.redirect)
        guard case .respond(let moved) = await r.receive(try invite("sip:alice@example.com"), from: udp) else {
            Issue.record("expected a response")
            return
        }
        #expect(moved.statusCode == 302)
        #expect(moved.contactList.map(\.uri) == ["sip:alice@192.0.2.11:5060", "sip:alice@192.0.2.10:5060"])
        #expect(await r.receive(try invite("sip:nobody@example.com"), from: udp).statusCode == 404)
        guard case .respond(let sips) = await r.receive(try invite("sips:alice@example.com"), from: tls) else {
            Issue.record("expected a response")
            return
        }
        #expect(sips.statusCode == 480)
        #expect(try sips.headers.warning.first?.code == 380)
        #expect(try sips.headers.warning.first?.text == "SIPS Not Allowed")
    }

    @Test func rewriteLikeNetSIP() async throws {
        let r = try await registrar(.rewrite)
        guard case .forward(let rewritten, _) = await r.receive(try invite("sip:alice@example.com"), from: udp) else {
            Issue.record("expected a forward")
            return
        }
        #expect(rewritten.uri.description == "sip:alice@192.0.2.11:5060")
        guard case .pass = await r.receive(try invite("sip:nobody@example.com"), from: udp) else {
            Issue.record("unknown user must pass unchanged")
            return
        }
    }
}

@Suite struct RegistrarFlowTests {
    @Test func flowsInUseFollowTheBindings() async throws {
        let clock = ManualRegistrarClock()
        let r = try Registrar(configuration: RegistrarConfiguration(minExpires: 60, maxExpires: 3600), clock: clock)
        var b = RegisterBuilder()
        b.contacts = ["<sip:a@h1;transport=tcp>;expires=100", "<sip:a@h2;transport=tcp>;expires=200"]
        _ = try await r.send(b, from: tcp)  // flow 7
        #expect(r.isFlowInUse(7) && !r.isFlowInUse(8))
        b.cseq = 2
        b.contacts = ["<sip:a@h1;transport=tcp>;expires=0"]
        _ = try await r.send(b, from: tcp)
        #expect(r.isFlowInUse(7))  // h2 still uses it
        clock.advance(seconds: 201)
        _ = await r.expire()
        #expect(!r.isFlowInUse(7))
        var c = RegisterBuilder()
        c.requestURI = "sips:example.com"
        c.to = "<sips:alice@example.com>"
        c.contacts = ["<sips:alice@192.0.2.10:5061>"]
        _ = try await r.send(c, from: tls)  // flow 8
        #expect(r.isFlowInUse(8))
        try await r.removeAll(address: "sip:alice@example.com")
        #expect(!r.isFlowInUse(8))
    }

    @Test func flowIDsOfAnotherProcessAreDroppedAtLoad() async throws {
        let store = InMemoryBindingStore()
        let clock = ManualRegistrarClock()
        let first = try Registrar(configuration: RegistrarConfiguration(minExpires: 60, maxExpires: 3600), store: store, clock: clock)
        _ = try await first.send(RegisterBuilder(), from: tcp)
        #expect(first.isFlowInUse(7))
        let second = try Registrar(configuration: RegistrarConfiguration(minExpires: 60, maxExpires: 3600), store: store, clock: clock)
        #expect(try await second.load() == 1)
        #expect(!second.isFlowInUse(7))
        #expect(second.lookup("sip:alice@example.com").first?.flowID == nil)
    }
}
