import SIPMessage
@testable import SIPRegistrar
import SIPTLS
import SIPTestSupport
import Testing

extension AuthenticatorTests {
    // MARK: Limits

    @Test func failuresPerSourceBlockThenLift() throws {
        let h = try AuthHarness {
            $0.failuresPerSource = .init(limit: 3, windowMilliseconds: 60_000, cooldownMilliseconds: 120_000)
            $0.failuresPerUser = .off
        }
        for _ in 0..<3 { #expect(try h.login(DigestClient(password: "bad")).response?.statusCode == 401) }
        // The fourth failure starts the block (logged once); from then on the source gets 403.
        #expect(try h.login(DigestClient(password: "bad")).response?.statusCode == 401)
        let blocked = try #require(try h.send(RegisterBuilder()).response)
        #expect(blocked.statusCode == 403 && blocked.reasonPhrase == "Too Many Failed Authentications")
        #expect(h.limits.count == 1)
        // Another source is not affected.
        let other = SIPSource(transport: .udp, remoteHost: "192.0.2.99", remotePort: 5060)
        #expect(try h.login(DigestClient(), from: other).forwardedSource != nil)
        // After the cooldown the source may try again, and the right password works.
        h.clock.advance(seconds: 121)
        #expect(try h.login(DigestClient()).forwardedSource != nil)
    }

    @Test func failuresPerUserBlockThatUserOnly() throws {
        let h = try AuthHarness {
            $0.failuresPerSource = .off
            $0.failuresPerUser = .init(limit: 2, windowMilliseconds: 60_000, cooldownMilliseconds: 60_000)
        }
        for i in 0..<3 {
            let s = SIPSource(transport: .udp, remoteHost: "192.0.2.\(50 + i)", remotePort: 5060)
            _ = try h.login(DigestClient(password: "bad"), from: s)
        }
        let r = try #require(try h.login(DigestClient()).response)
        #expect(r.statusCode == 403)
        var bobs = RegisterBuilder()
        bobs.to = "<sip:bob@example.com>"
        #expect(try h.login(DigestClient(user: "bob", password: "builder"), builder: bobs).forwardedSource != nil)
        h.clock.advance(seconds: 61)
        #expect(try h.login(DigestClient()).forwardedSource != nil)
    }

    /// A stranger sending wrong passwords in alice's name blocks the name, but not alice's own devices.
    @Test func blockedUserStillLogsInFromItsRecentGoodSources() throws {
        let h = try AuthHarness {
            $0.failuresPerSource = .off
            $0.failuresPerUser = .init(limit: 2, windowMilliseconds: 60_000, cooldownMilliseconds: 600_000)
        }
        // alice's phone logs in before the attack.
        #expect(try h.login(DigestClient()).forwardedSource != nil)
        let stranger = SIPSource(transport: .udp, remoteHost: "198.51.100.66", remotePort: 5060)
        for _ in 0..<3 { _ = try h.login(DigestClient(password: "guess"), from: stranger) }
        // Blocked for the stranger, even with the right password (it never logged in as alice)...
        let r = try #require(try h.login(DigestClient(), from: stranger).response)
        #expect(r.statusCode == 403 && r.reasonPhrase == "Too Many Failed Authentications")
        // ...and for any other new source.
        let newcomer = SIPSource(transport: .tcp, remoteHost: "203.0.113.5", remotePort: 40000, flowID: 3)
        #expect(try h.login(DigestClient(), from: newcomer).response?.statusCode == 403)
        // alice's phone still registers, again and again.
        for _ in 0..<3 { #expect(try h.login(DigestClient()).forwardedSource != nil) }
        // From a known source a wrong password is still a wrong password.
        #expect(try h.login(DigestClient(password: "typo")).response?.statusCode == 401)
        // Another port on the same address is the same source.
        let samePhone = SIPSource(transport: .udp, remoteHost: udp.remoteHost, remotePort: 5999)
        #expect(try h.login(DigestClient(), from: samePhone).forwardedSource != nil)
    }

    @Test func goodSourcesAreBoundedPerUserAndInUsers() throws {
        let h = try AuthHarness {
            $0.failuresPerSource = .off
            $0.failuresPerUser = .init(limit: 1, windowMilliseconds: 60_000, cooldownMilliseconds: 600_000)
            $0.goodSourcesPerUser = 2
            $0.rememberedUsers = 2
        }
        let sources = (1...3).map { SIPSource(transport: .udp, remoteHost: "192.0.2.\($0)", remotePort: 5060) }
        for s in sources { #expect(try h.login(DigestClient(), from: s).forwardedSource != nil) }
        let stranger = SIPSource(transport: .udp, remoteHost: "198.51.100.66", remotePort: 5060)
        for _ in 0..<2 { _ = try h.login(DigestClient(password: "guess"), from: stranger) }
        // Only the last two sources are remembered.
        #expect(try h.login(DigestClient(), from: sources[0]).response?.statusCode == 403)
        #expect(try h.login(DigestClient(), from: sources[1]).forwardedSource != nil)
        #expect(try h.login(DigestClient(), from: sources[2]).forwardedSource != nil)
        // Room for two users: after bob and then carol authenticate, alice is the one forgotten.
        var bobs = RegisterBuilder()
        bobs.to = "<sip:bob@example.com>"
        #expect(try h.login(DigestClient(user: "bob", password: "builder"), builder: bobs).forwardedSource != nil)
        #expect(h.auth.goodSources.withLock { $0.count } == 2)
        h.auth.rememberGoodSource(user: "carol@example.com", source: "192.0.2.9")
        #expect(try h.login(DigestClient(), from: sources[2]).response?.statusCode == 403)
    }

    /// An IPv6 host owns a /64: counting per address would give one attacker 2^64 fresh budgets.
    @Test func ipv6SourcesCountPerSlash64() throws {
        let h = try AuthHarness {
            $0.failuresPerSource = .init(limit: 3, windowMilliseconds: 60_000, cooldownMilliseconds: 120_000)
            $0.failuresPerUser = .off
        }
        for i in 1...4 {
            let s = SIPSource(transport: .udp, remoteHost: "2001:db8:1:2::\(i)", remotePort: 5060)
            #expect(try h.login(DigestClient(password: "bad"), from: s).response?.statusCode == 401)
        }
        let sameNet = SIPSource(transport: .udp, remoteHost: "2001:db8:1:2:abcd:ef01:2345:6789", remotePort: 5060)
        #expect(try h.send(RegisterBuilder(), from: sameNet).response?.statusCode == 403)
        #expect(h.limits == [.limited(.failuresPerSource, key: "2001:db8:1:2::/64", untilMilliseconds: h.clock.nowMilliseconds() + 120_000,
                                      first: true)])
        let nextNet = SIPSource(transport: .udp, remoteHost: "2001:db8:1:3::1", remotePort: 5060)
        #expect(try h.login(DigestClient(), from: nextNet).forwardedSource != nil)

        let rate = try AuthHarness { $0.mode = .off; $0.registersPerSource = .init(limit: 2, windowMilliseconds: 1_000) }
        for i in 1...2 {
            #expect(try rate.send(RegisterBuilder(), from: SIPSource(transport: .udp, remoteHost: "2001:db8::\(i)", remotePort: 5060)).isPass)
        }
        #expect(try rate.send(RegisterBuilder(), from: SIPSource(transport: .udp, remoteHost: "2001:db8::99", remotePort: 5060))
            .response?.statusCode == 503)
        // IPv4 (and IPv4 mapped into IPv6) still counts per address.
        #expect(try rate.send(RegisterBuilder(), from: SIPSource(transport: .udp, remoteHost: "192.0.2.7", remotePort: 5060)).isPass)
        #expect(try rate.send(RegisterBuilder(), from: SIPSource(transport: .udp, remoteHost: "::ffff:192.0.2.7", remotePort: 5060)).isPass)
        #expect(try rate.send(RegisterBuilder(), from: SIPSource(transport: .udp, remoteHost: "192.0.2.7", remotePort: 5060))
            .response?.statusCode == 503)
        #expect(try rate.send(RegisterBuilder(), from: SIPSource(transport: .udp, remoteHost: "192.0.2.8", remotePort: 5060)).isPass)
    }

    @Test func registerRatePerSourceAnswers503WithRetryAfter() throws {
        let h = try AuthHarness { $0.mode = .off; $0.registersPerSource = .init(limit: 5, windowMilliseconds: 1_000) }
        for _ in 0..<5 { #expect(try h.send(RegisterBuilder()).isPass) }
        let r = try #require(try h.send(RegisterBuilder()).response)
        #expect(r.statusCode == 503 && r.headers[.retryAfter] == "1")
        h.clock.advance(seconds: 1)
        #expect(try h.send(RegisterBuilder()).isPass)
    }

    @Test func dropActionSendsNothingAndExemptSourcesAreNotLimited() throws {
        let h = try AuthHarness {
            $0.mode = .off
            $0.limitAction = .drop
            $0.registersPerSource = .init(limit: 1, windowMilliseconds: 1_000)
            $0.exemptSources = try! IPAddressSet(["10.0.0.0/8", "::1"])
        }
        #expect(try h.send(RegisterBuilder()).isPass)
        #expect(try h.send(RegisterBuilder()).isDiscard)
        let exempt = SIPSource(transport: .udp, remoteHost: "::ffff:10.1.2.3", remotePort: 5060)
        for _ in 0..<5 { #expect(try h.send(RegisterBuilder(), from: exempt).isPass) }
    }
}
