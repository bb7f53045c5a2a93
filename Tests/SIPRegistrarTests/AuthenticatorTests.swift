import SIPMessage
@testable import SIPRegistrar
import SIPTLS
import SIPTestSupport
import Testing

/// The OpenSSL primitives the server uses.
struct TestHashing: DigestHashing {
    func hash(_ algorithm: DigestAlgorithm, _ bytes: [UInt8]) -> [UInt8] {
        OpenSSLHashing.hash(algorithm == .sha256 ? .sha256 : .md5, bytes)
    }

    func hmacSHA256(key: [UInt8], _ message: [UInt8]) -> [UInt8] { OpenSSLHashing.hmacSHA256(key: key, message) }
}

/// A digest client as RFC 7616 describes it, for SHA-256 (Net::SIP covers MD5 in the server tests).
struct DigestClient {
    var user = "alice"
    var password = "secret"
    var algorithm = DigestAlgorithm.sha256
    var cnonce = "0a4f113b"

    func credentials(for challenge: SIPResponse, method: String = "REGISTER", uri: String = "sip:example.com", nc: Int = 1,
                     user: String? = nil) -> String? {
        guard let fields = try? challenge.headers.wwwAuthenticate,
              let c = fields.first(where: { $0["algorithm"] == algorithm.rawValue }),
              let realm = c["realm"], let nonce = c["nonce"] else { return nil }
        let h = TestHashing()
        let name = user ?? self.user
        let ha1 = h.ha1(algorithm, user: name, realm: realm, password: password)
        let ha2 = h.hexHash(algorithm, "\(method):\(uri)")
        let hex = String(nc, radix: 16)
        let ncText = String(repeating: "0", count: max(0, 8 - hex.count)) + hex
        let response = h.hexHash(algorithm, "\(ha1):\(nonce):\(ncText):\(cnonce):auth:\(ha2)")
        return "Authorization: Digest username=\"\(name)\", realm=\"\(realm)\", nonce=\"\(nonce)\", uri=\"\(uri)\", "
            + "response=\"\(response)\", algorithm=\(algorithm.rawValue), cnonce=\"\(cnonce)\", qop=auth, nc=\(ncText)"
    }
}

/// An authenticator with a users table (alice, bob with an alias), a manual clock and recorded events.
struct AuthHarness {
    let clock = ManualRegistrarClock()
    let events = LockedState<[AuthenticationEvent]>([])
    let auth: Authenticator

    init(_ configure: (inout AuthenticationConfiguration) -> Void = { _ in }, secret: [UInt8] = Array(repeating: 7, count: 32)) throws {
        var config = AuthenticationConfiguration(mode: .digest, exemptSources: .empty)
        configure(&config)
        let h = TestHashing()
        var users = UserTable()
        for (user, pw, aliases) in [("alice", "secret", [String]()), ("bob", "builder", ["robert@example.org"])] {
            var ha1: [DigestAlgorithm: String] = [:]
            for a in DigestAlgorithm.allCases { ha1[a] = h.ha1(a, user: user, realm: "example.com", password: pw) }
            users.upsert(DigestUser(user: user, realm: "example.com", ha1: ha1, aliases: aliases))
        }
        let events = self.events
        auth = try Authenticator(configuration: config, users: users, hashing: h, secret: secret, clock: clock,
                                 observer: { e in events.withLock { $0.append(e) } })
    }

    func send(_ b: RegisterBuilder, from source: SIPSource = udp) throws -> SIPReceiveOutcome {
        auth.authorize(try b.request(), from: source)
    }

    /// Challenge, then answer it: the outcome of the second request.
    func login(_ client: DigestClient, builder: RegisterBuilder = RegisterBuilder(), from source: SIPSource = udp) throws -> SIPReceiveOutcome {
        guard case .respond(let challenge) = try send(builder, from: source), challenge.statusCode == 401,
              let line = client.credentials(for: challenge, uri: builder.requestURI) else {
            Issue.record("no challenge")
            return .pass
        }
        var b = builder
        b.cseq += 1
        b.extra.append(line)
        return try send(b, from: source)
    }

    var limits: [AuthenticationEvent] { events.withLock { $0.filter { if case .limited = $0 { return true } else { return false } } } }
}

extension SIPReceiveOutcome {
    var forwardedSource: SIPSource? {
        if case .forward(_, let s) = self { return s }
        return nil
    }

    var response: SIPResponse? {
        if case .respond(let r) = self { return r }
        return nil
    }

    var isDiscard: Bool {
        if case .discard = self { return true }
        return false
    }
}

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

extension SIPReceiveOutcome {
    var isPass: Bool {
        if case .pass = self { return true }
        return false
    }
}

extension String {
    func replacingOccurrences(_ a: String, _ b: String) -> String { replacing(a, with: b) }
}

@Suite struct UserTableTests {
    @Test func parsesWritesAndReplaces() throws {
        let text = """
            # comment
            alice@Example.COM md5=0123456789abcdef0123456789abcdef aliases=al@example.org

            bob@example.com sha-256=\(String(repeating: "ab", count: 32))\r
            """
        var t = try UserTable.parse(text)
        #expect(t.count == 2)
        #expect(t.lookup(user: "alice", realm: "example.com")?.aliases == ["al@example.org"])
        #expect(t.lookup(user: "Alice", realm: "example.com") == nil)
        #expect(t.lookup(user: "bob", realm: "EXAMPLE.com")?.ha1[.sha256] != nil)
        t.upsert(DigestUser(user: "alice", realm: "example.com", ha1: [.md5: String(repeating: "f", count: 32)]))
        let again = try UserTable.parse(t.serialized)
        #expect(again == t)
        #expect(again.users.map(\.user) == ["alice", "bob"])
    }

    @Test(arguments: [
        ("alice md5=00", 1, "expected user@realm first"),
        ("alice@example.com", 1, "no hash for alice@example.com (md5= or sha-256=)"),
        ("# x\nalice@example.com md5=xyz", 2, "md5 must be 32 hex digits"),
        ("alice@example.com sha1=00", 1, "unknown key 'sha1' (expected md5, sha-256 or aliases)"),
        ("alice@example.com md5", 1, "expected key=value, got 'md5'"),
    ])
    func errorsNameTheLine(text: String, line: Int, message: String) {
        #expect(throws: UserTableError(line: line, message: message)) { try UserTable.parse(text) }
    }

    @Test func digestMatchesTheRFCExamples() {
        let h = TestHashing()
        // RFC 2617 3.5 (MD5, qop=auth).
        let ha1 = h.ha1(.md5, user: "Mufasa", realm: "testrealm@host.com", password: "Circle Of Life")
        #expect(ha1 == "939e7578ed9e3c518a452acee763bce9")
        #expect(Authenticator.response(h, .md5, ha1: ha1, nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", nc: "00000001",
                                       cnonce: "0a4f113b", qop: "auth", method: "GET", uri: "/dir/index.html")
            == "6629fae49393a05397450978507c4ef1")
        // RFC 7616 3.9.1 (SHA-256 and MD5).
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
        for (a, expected) in [(DigestAlgorithm.sha256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
                              (.md5, "8ca523f5e9506fed4657c9700eebdbec")] {
            let ha1 = h.ha1(a, user: "Mufasa", realm: "http-auth@example.org", password: "Circle of Life")
            #expect(Authenticator.response(h, a, ha1: ha1, nonce: nonce, nc: "00000001", cnonce: cnonce, qop: "auth",
                                           method: "GET", uri: "/dir/index.html") == expected)
        }
    }
}

@Suite struct SourceLimitTests {
    @Test func addressSetMatchesNetworksAndMappedAddresses() throws {
        let s = try IPAddressSet(["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"])
        #expect(s.contains("10.200.3.4") && s.contains("::ffff:10.0.0.1") && s.contains("192.0.2.1"))
        #expect(!s.contains("11.0.0.1") && !s.contains("192.0.2.2") && !s.contains("garbage"))
        #expect(s.contains("2001:db8:1::5") && !s.contains("2001:db9::1"))
        #expect(IPAddressSet.loopback.contains("127.1.2.3") && IPAddressSet.loopback.contains("::1"))
        #expect(!IPAddressSet.empty.contains("127.0.0.1"))
        #expect(throws: IPAddressSetError(entry: "10.0.0.0/33")) { try IPAddressSet(["10.0.0.0/33"]) }
        #expect(throws: IPAddressSetError(entry: "example.com")) { try IPAddressSet(["example.com"]) }
    }

    @Test func windowLimiterBlocksLogsOnceAndStaysBounded() {
        let l = WindowLimiter(policy: .init(limit: 2, windowMilliseconds: 1_000, cooldownMilliseconds: 5_000), capacity: 100)
        #expect(l.record("a", now: 0) == .allowed)
        #expect(l.record("a", now: 10) == .allowed)
        #expect(l.record("a", now: 20) == .blocked(until: 5_020, firstInWindow: true))
        #expect(l.record("a", now: 30) == .blocked(until: 5_020, firstInWindow: false))
        #expect(l.isBlocked("a", now: 5_000) && !l.isBlocked("a", now: 5_020))
        #expect(l.record("a", now: 5_020) == .allowed)
        // A flood of distinct keys never grows the table past its capacity.
        for i in 0..<10_000 { _ = l.record("k\(i)", now: 6_000) }
        #expect(l.trackedCount <= 100)
    }

    /// A full table forgets its least recently seen key; a new key is counted, never let through untracked.
    @Test func fullWindowLimiterEvictsTheLeastRecentlyUsedKey() {
        let l = WindowLimiter(policy: .init(limit: 1, windowMilliseconds: 60_000, cooldownMilliseconds: 60_000), capacity: 3)
        for k in ["a", "b", "c"] { #expect(l.record(k, now: 0) == .allowed) }
        // Full. "a" is used again, so "b" is now the least recently used.
        #expect(l.record("a", now: 1) == .blocked(until: 60_001, firstInWindow: true))
        // A new key is tracked (and so limited): it takes b's place.
        #expect(l.record("d", now: 2) == .allowed)
        #expect(l.record("d", now: 3) == .blocked(until: 60_003, firstInWindow: true))
        #expect(l.trackedCount == 3)
        #expect(l.isBlocked("a", now: 4))
        // b was forgotten, so it counts afresh; c, now the least recently seen, makes room.
        #expect(l.record("b", now: 5) == .allowed)
        // Then c counts afresh and d makes room; a, seen at 4, stays blocked.
        #expect(l.record("c", now: 6) == .allowed)
        #expect(l.isBlocked("a", now: 7) && !l.isBlocked("d", now: 7))
    }

    @Test func lruTableKeepsRecencyOrderAndReusesSlots() {
        var t = LRUTable<String, Int>(capacity: 3)
        t.set("a", 1)
        t.set("b", 2)
        t.set("c", 3)
        #expect(t.keysByRecency == ["c", "b", "a"])
        #expect(t.value(forKey: "a") == 1)
        #expect(t.keysByRecency == ["a", "c", "b"])
        t.set("d", 4)  // evicts b
        #expect(t.keysByRecency == ["d", "a", "c"] && !t.contains("b"))
        #expect(t.removeValue(forKey: "a") == 1)
        t.set("e", 5)  // a free slot: nothing evicted
        #expect(t.keysByRecency == ["e", "d", "c"] && t.count == 3)
        #expect(t.modify("c", orInsert: { 0 }) { v -> Int in v += 10; return v } == 13)
        #expect(t.keysByRecency == ["c", "e", "d"])
        // A long flood stays within capacity, touching each key a constant number of times.
        var big = LRUTable<Int, Int>(capacity: 1_000)
        for i in 0..<100_000 { big.set(i, i) }
        #expect(big.count == 1_000 && big.keysByRecency.first == 99_999 && big.keysByRecency.last == 99_000)
    }

    @Test func sourceKeysGroupIPv6By64AndMapIPv4() {
        #expect(SourceKey.limitKey(forIP: "192.0.2.1") == "192.0.2.1")
        #expect(SourceKey.limitKey(forIP: "2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64")
        #expect(SourceKey.limitKey(forIP: "2001:DB8:0:0:ffff::1") == "2001:db8:0:0::/64")
        #expect(SourceKey.limitKey(forIP: "::1") == "0:0:0:0::/64")
        #expect(SourceKey.limitKey(forIP: "::ffff:192.0.2.1") == "192.0.2.1")
        #expect(SourceKey.limitKey(forIP: "fe80::1%eth0") == "fe80::1%eth0")
        #expect(SourceKey.limitKey(forIP: "not-an-address") == "not-an-address")
    }
}
