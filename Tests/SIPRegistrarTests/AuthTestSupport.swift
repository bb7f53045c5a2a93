import SIPMessage
@testable import SIPRegistrar
import SIPTLS
import SIPTestSupport
import Testing

extension SIPReceiveOutcome {
    var isPass: Bool {
        if case .pass = self { return true }
        return false
    }
}

extension String {
    func replacingOccurrences(_ a: String, _ b: String) -> String { replacing(a, with: b) }
}

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
