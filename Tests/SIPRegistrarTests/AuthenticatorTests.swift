import SIPMessage
@testable import SIPRegistrar
import SIPTLS
import SIPTestSupport
import Testing

@Suite struct AuthenticatorTests {
    @Test func challengeOffersSHA256ThenMD5WithQopAndFreshNonces() throws {
        let h = try AuthHarness()
        let r = try #require(try h.send(RegisterBuilder()).response)
        #expect(r.statusCode == 401)
        let values = r.headers.values(.wwwAuthenticate).map(String.init)
        #expect(values.count == 2)
        #expect(values[0].contains("algorithm=SHA-256") && values[1].contains("algorithm=MD5"))
        #expect(values.allSatisfy { $0.hasPrefix("Digest realm=\"example.com\", nonce=\"") && $0.contains("qop=\"auth\"") })
        let fields = try r.headers.wwwAuthenticate
        #expect(fields[0]["nonce"] != fields[1]["nonce"])
        #expect(r.headers[.to]?.contains(";tag=") == true)
    }

    @Test(arguments: DigestAlgorithm.allCases)
    func correctPasswordIsForwardedWithTheIdentity(algorithm: DigestAlgorithm) throws {
        let h = try AuthHarness()
        let outcome = try h.login(DigestClient(algorithm: algorithm))
        let s = try #require(outcome.forwardedSource)
        #expect(s.authenticatedIdentity == "alice@example.com")
        #expect(s.authenticationMethod == .digest)
    }

    @Test func registrarAfterAuthenticatorStoresTheBinding() async throws {
        let h = try AuthHarness()
        let registrar = try Registrar(configuration: RegistrarConfiguration())
        let outcome = try h.login(DigestClient())
        guard case .forward(let req, let src) = outcome else { Issue.record("not forwarded"); return }
        #expect(await registrar.receive(req, from: src).statusCode == 200)
        #expect(registrar.query("sip:alice@example.com").count == 1)
    }

    @Test func wrongPasswordAndUnknownUserLookTheSame() throws {
        let h = try AuthHarness()
        let wrong = try #require(try h.login(DigestClient(password: "nope")).response)
        var unknownBuilder = RegisterBuilder()
        unknownBuilder.to = "<sip:mallory@example.com>"
        let unknown = try #require(try h.login(DigestClient(user: "mallory", password: "x"), builder: unknownBuilder).response)
        #expect(wrong.statusCode == 401 && unknown.statusCode == 401)
        #expect(wrong.reasonPhrase == unknown.reasonPhrase)
        func shape(_ r: SIPResponse) -> [String] {
            r.headers.fields.map { f in
                // Everything but the per-request values: nonces, tags, names from the request.
                var v = String(f.value)
                if f.name == .wwwAuthenticate { v = v.replacing(/nonce="[0-9a-f]+"/, with: "nonce") }
                if f.name == .to || f.name == .from { v = "addr" }
                return f.name.name + ": " + v
            }
        }
        #expect(shape(wrong) == shape(unknown))
        let failures = h.events.withLock { $0.compactMap { e -> AuthenticationEvent.Failure? in
            if case .failed(let f, _, _, _) = e { return f } else { return nil } } }
        #expect(failures == [.badCredentials, .badCredentials])
    }

    @Test func replayedNonceCountIsRefused() throws {
        let h = try AuthHarness()
        let client = DigestClient()
        let challenge = try #require(try h.send(RegisterBuilder()).response)
        var b = RegisterBuilder()
        b.cseq = 2
        b.extra = [try #require(client.credentials(for: challenge))]
        #expect(try h.send(b).forwardedSource != nil)
        // The same request again (a captured packet): refused with a new challenge.
        let replay = try #require(try h.send(b).response)
        #expect(replay.statusCode == 401)
        // A higher nonce-count on the same nonce is fine (clients reuse nonces).
        b.cseq = 3
        b.extra = [try #require(client.credentials(for: challenge, nc: 2))]
        #expect(try h.send(b).forwardedSource != nil)
    }

    @Test func expiredNonceGetsStaleTrueAndTheNewOneWorks() throws {
        let h = try AuthHarness { $0.nonceLifetime = 30 }
        let client = DigestClient()
        let challenge = try #require(try h.send(RegisterBuilder()).response)
        h.clock.advance(seconds: 31)
        var b = RegisterBuilder()
        b.cseq = 2
        b.extra = [try #require(client.credentials(for: challenge))]
        let stale = try #require(try h.send(b).response)
        #expect(stale.statusCode == 401)
        #expect(stale.headers.values(.wwwAuthenticate).allSatisfy { $0.contains("stale=true") })
        b.cseq = 3
        b.extra = [try #require(client.credentials(for: stale))]
        #expect(try h.send(b).forwardedSource != nil)
        // A stale nonce with a wrong password is a failure, not a stale answer.
        h.clock.advance(seconds: 31)
        b.cseq = 4
        b.extra = [try #require(DigestClient(password: "bad").credentials(for: stale))]
        let failed = try #require(try h.send(b).response)
        #expect(!failed.headers.values(.wwwAuthenticate).contains { $0.contains("stale") })
    }

    @Test func forgedOrForeignNonceIsRefused() throws {
        let h = try AuthHarness()
        let other = try AuthHarness(secret: Array(repeating: 9, count: 32))
        // A nonce made with another secret.
        let foreign = try #require(try other.send(RegisterBuilder()).response)
        var b = RegisterBuilder()
        b.cseq = 2
        b.extra = [try #require(DigestClient().credentials(for: foreign))]
        #expect(try h.send(b).response?.statusCode == 401)
        #expect(h.events.withLock { $0.contains(.failed(.badNonce, user: "alice", realm: "example.com", source: udp.remoteAddress)) })
    }

    /// RFC 7616 3.4.5 counts are per node: a captured Authorization must not be replayable at another node.
    @Test func anotherNodesNonceIsAnsweredStaleNotAccepted() throws {
        let a = try AuthHarness { $0.nodeName = "node-a" }
        let b = try AuthHarness { $0.nodeName = "node-b" }
        let challenge = try #require(try a.send(RegisterBuilder()).response)
        var req = RegisterBuilder()
        req.cseq = 2
        req.extra = [try #require(DigestClient().credentials(for: challenge))]
        #expect(try a.send(req).forwardedSource != nil)
        // The same request at the other node (same secret): a fresh challenge, stale=true, not a failure.
        let replay = try #require(try b.send(req).response)
        #expect(replay.statusCode == 401)
        #expect(replay.headers.values(.wwwAuthenticate).count == 2)
        #expect(replay.headers.values(.wwwAuthenticate).allSatisfy { $0.contains("stale=true") })
        #expect(!b.events.withLock { $0.contains { if case .failed = $0 { true } else { false } } })
        // Neither is a nonce of node a that node a never saw used.
        let unused = try #require(try a.send(RegisterBuilder()).response)
        req.extra = [try #require(DigestClient().credentials(for: unused))]
        #expect(try b.send(req).response?.headers.values(.wwwAuthenticate).allSatisfy { $0.contains("stale=true") } == true)
        // The answer to node b's own challenge works there.
        req.cseq = 3
        req.extra = [try #require(DigestClient().credentials(for: replay))]
        #expect(try b.send(req).forwardedSource != nil)
        // A wrong password with another node's nonce is a plain failure (no stale=true).
        req.extra = [try #require(DigestClient(password: "bad").credentials(for: unused))]
        let bad = try #require(try b.send(req).response)
        #expect(bad.statusCode == 401 && !bad.headers.values(.wwwAuthenticate).contains { $0.contains("stale") })
    }

    /// A node's nonce-counts do not survive a restart, so neither do its nonces (even under the same name).
    @Test func aRestartedNodeAnswersItsOldNoncesStale() throws {
        let before = try AuthHarness { $0.nodeName = "node-a" }
        let after = try AuthHarness { $0.nodeName = "node-a" }
        let challenge = try #require(try before.send(RegisterBuilder()).response)
        var req = RegisterBuilder()
        req.cseq = 2
        req.extra = [try #require(DigestClient().credentials(for: challenge))]
        #expect(try before.send(req).forwardedSource != nil)
        let r = try #require(try after.send(req).response)
        #expect(r.statusCode == 401 && r.headers.values(.wwwAuthenticate).allSatisfy { $0.contains("stale=true") })
    }

    /// Nonces in the format without a node tag (before an upgrade) get a fresh challenge, not a failure.
    @Test func unboundNoncesFromBeforeAnUpgradeAreStale() throws {
        let h = try AuthHarness()
        let hashing = TestHashing()
        let payload = bigEndianBytes(UInt64(bitPattern: h.clock.nowMilliseconds())) + bigEndianBytes(42)
        let mac = hashing.hmacSHA256(key: Array(repeating: 7, count: 32), payload + Array("example.com".utf8)).prefix(16)
        let old = hexString(payload + mac)
        #expect(h.auth.nonces.check(old, realm: "example.com", now: h.clock.nowMilliseconds()) == .otherNode)
        var forged = Array(old)
        forged[40] = forged[40] == "0" ? "1" : "0"
        #expect(h.auth.nonces.check(String(forged), realm: "example.com", now: h.clock.nowMilliseconds()) == .invalid)
        #expect(h.auth.nonces.check(String(repeating: "z", count: 80), realm: "example.com", now: 0) == .invalid)
    }

    /// `auth.algorithms: [SHA-256]`: only the SHA-256 challenge, and an MD5 answer is refused like a wrong password.
    @Test func md5TurnedOffOffersOnlySHA256AndRefusesMD5() throws {
        let h = try AuthHarness { $0.algorithms = [.sha256] }
        let challenge = try #require(try h.send(RegisterBuilder()).response)
        let values = challenge.headers.values(.wwwAuthenticate).map(String.init)
        #expect(values.count == 1 && values[0].contains("algorithm=SHA-256"))
        // An MD5 answer with the right password (to a nonce this node issued).
        let md5Line = try #require(DigestClient().credentials(for: challenge)?
            .replacingOccurrences("algorithm=SHA-256", "algorithm=MD5"))
        let nonce = try #require((try challenge.headers.wwwAuthenticate).first?["nonce"])
        let h1 = TestHashing().ha1(.md5, user: "alice", realm: "example.com", password: "secret")
        let response = Authenticator.response(TestHashing(), .md5, ha1: h1, nonce: nonce, nc: "00000001", cnonce: "0a4f113b",
                                              qop: "auth", method: "REGISTER", uri: "sip:example.com")
        var b = RegisterBuilder()
        b.cseq = 2
        b.extra = [md5Line.replacing(/response="[0-9a-f]+"/, with: "response=\"\(response)\"")]
        let r = try #require(try h.send(b).response)
        #expect(r.statusCode == 401 && r.headers.values(.wwwAuthenticate).count == 1)
        #expect(!r.headers.values(.wwwAuthenticate).contains { $0.contains("stale") })
        #expect(h.events.withLock { $0.contains(.failed(.badCredentials, user: "alice", realm: "example.com", source: udp.remoteAddress)) })
        // With MD5 on, the same answer is accepted.
        let on = try AuthHarness()
        #expect(try on.login(DigestClient(algorithm: .md5)).forwardedSource != nil)
        #expect(throws: RegistrarConfigurationError.self) { try AuthHarness { $0.algorithms = [.md5, .md5] } }
    }

    @Test func onlyTheOwnAddressOrAnAliasMayBeRegistered() throws {
        let h = try AuthHarness()
        var other = RegisterBuilder()
        other.to = "<sip:bob@example.com>"
        // alice's credentials (realm example.com) for bob's address of record.
        let r = try #require(try h.login(DigestClient(), builder: other).response)
        #expect(r.statusCode == 403)
        #expect(r.reasonPhrase == "Not Allowed To Register This Address")
        // With one realm per domain, bob's alias in another domain is challenged in that domain's realm.
        var alias = RegisterBuilder()
        alias.to = "<sip:robert@example.org>"
        alias.requestURI = "sip:example.org"
        let challenge = try #require(try h.send(alias).response)
        #expect((try challenge.headers.wwwAuthenticate).first?["realm"] == "example.org")
        // With one realm for all domains, bob may register his alias; alice may not.
        let single = try AuthHarness { $0.realm = "example.com" }
        #expect(try single.login(DigestClient(user: "bob", password: "builder"), builder: alias).forwardedSource?
            .authenticatedIdentity == "bob@example.com")
        #expect(try single.login(DigestClient(), builder: alias).response?.statusCode == 403)
    }

    @Test func digestURIMustNameTheRequestURI() throws {
        let h = try AuthHarness()
        let challenge = try #require(try h.send(RegisterBuilder()).response)
        var b = RegisterBuilder()
        b.cseq = 2
        b.extra = [try #require(DigestClient().credentials(for: challenge, uri: "sip:elsewhere.example.net"))]
        let r = try #require(try h.send(b).response)
        #expect(r.statusCode == 400 && r.reasonPhrase == "Digest URI Does Not Match Request-URI")
    }

    @Test func credentialsWithoutQopOrWithUnknownAlgorithmFail() throws {
        let h = try AuthHarness()
        let challenge = try #require(try h.send(RegisterBuilder()).response)
        var b = RegisterBuilder()
        b.cseq = 2
        let good = try #require(DigestClient().credentials(for: challenge))
        b.extra = [good.replacingOccurrences(", qop=auth", "")]
        #expect(try h.send(b).response?.statusCode == 401)
        b.extra = [good.replacingOccurrences("algorithm=SHA-256", "algorithm=SHA-512-256")]
        #expect(try h.send(b).response?.statusCode == 401)
    }

    // MARK: Certificates

    func tlsSource(_ uris: [String], verified: Bool = true) -> SIPSource {
        SIPSource(transport: .tls, remoteHost: "192.0.2.20", remotePort: 40002, flowID: 9,
                  tlsPeer: SIPTLSPeerIdentity(sipURIs: uris, verified: verified))
    }

    @Test func certificateNamingTheAORAuthenticates() async throws {
        let h = try AuthHarness { $0.mode = .certificate }
        var b = RegisterBuilder()
        b.transport = "TLS"
        let outcome = try h.send(b, from: tlsSource(["sips:alice@EXAMPLE.com"]))
        let s = try #require(outcome.forwardedSource)
        #expect(s.authenticatedIdentity == "sips:alice@EXAMPLE.com" && s.authenticationMethod == .certificate)
        // The registrar keeps the identity in the binding.
        let registrar = try Registrar(configuration: RegistrarConfiguration())
        guard case .forward(let req, let src) = outcome else { return }
        #expect(await registrar.receive(req, from: src).statusCode == 200)
        #expect(registrar.allBindings().bindings.first?.tlsIdentity == "sips:alice@EXAMPLE.com")
    }

    @Test func certificateForAnotherIdentityIsForbidden() throws {
        let h = try AuthHarness { $0.mode = .digestOrCertificate }
        let r = try #require(try h.send(RegisterBuilder(), from: tlsSource(["sip:bob@example.com"])).response)
        #expect(r.statusCode == 403 && r.reasonPhrase == "Certificate Identity Does Not Match")
    }

    @Test func certificateWithoutSIPURIFallsBackToDigestWhenAllowed() throws {
        let either = try AuthHarness { $0.mode = .digestOrCertificate }
        let noURI = tlsSource([])
        #expect(try either.send(RegisterBuilder(), from: noURI).response?.statusCode == 401)
        #expect(try either.login(DigestClient(), from: noURI).forwardedSource?.authenticationMethod == .digest)
        // An unverified certificate says nothing, whatever it names.
        #expect(try either.send(RegisterBuilder(), from: tlsSource(["sip:alice@example.com"], verified: false)).response?.statusCode == 401)
        let certOnly = try AuthHarness { $0.mode = .certificate }
        let r = try #require(try certOnly.send(RegisterBuilder(), from: noURI).response)
        #expect(r.statusCode == 403 && r.reasonPhrase == "Client Certificate Required")
        #expect(try certOnly.send(RegisterBuilder(), from: udp).response?.statusCode == 403)
    }

    @Test func perDomainModes() throws {
        let h = try AuthHarness { $0.mode = .off; $0.domainModes = ["secure.example.com": .digest] }
        #expect(try h.send(RegisterBuilder()).isPass)
        var b = RegisterBuilder()
        b.to = "<sip:alice@secure.example.com>"
        b.requestURI = "sip:secure.example.com"
        #expect(try h.send(b).response?.statusCode == 401)
        b.to = "<sip:alice@a.secure.example.com>"
        #expect(try h.send(b).response?.statusCode == 401)
    }

    // MARK: Other requests

    @Test func otherRequestsAreChallengedUnlessTrustedOrToTheServer() throws {
        let h = try AuthHarness { $0.trustedSources = try! IPAddressSet(["198.51.100.0/24"]) }
        let invite = try SIPText.request("""
            INVITE sip:alice@example.com SIP/2.0
            Via: SIP/2.0/UDP 192.0.2.30:5060;branch=z9hG4bKi1
            From: <sip:carol@example.com>;tag=1
            To: <sip:alice@example.com>
            Call-ID: i1
            CSeq: 1 INVITE
            Content-Length: 0


            """)
        #expect(h.auth.authorize(invite, from: udp).response?.statusCode == 401)
        let proxy = SIPSource(transport: .udp, remoteHost: "198.51.100.7", remotePort: 5060)
        #expect(h.auth.authorize(invite, from: proxy).isPass)
        let ping = try SIPText.request("""
            OPTIONS sip:example.com SIP/2.0
            Via: SIP/2.0/UDP 192.0.2.30:5060;branch=z9hG4bKo1
            From: <sip:carol@example.com>;tag=1
            To: <sip:example.com>
            Call-ID: o1
            CSeq: 1 OPTIONS
            Content-Length: 0


            """)
        #expect(h.auth.authorize(ping, from: udp).isPass)
    }

}
