import Foundation
import SIPTLS
import SIPTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Authentication and abuse limits of the real server, with real clients: Perl Net::SIP
/// (digest MD5, client certificates), sipvicious `svwar`, and the `passwd` subcommand.
@Suite(.serialized) struct ServerSecurityTests {
    static let netsip = PackageRoot.path("Tests/SIPRegistrarServerTests/netsip/register.pl")

    /// A users file made with `sip-registrar passwd`.
    func usersFile(_ entries: [(String, String)]) throws -> String {
        let path = NSTemporaryDirectory() + "sipreg-users-\(UUID().uuidString)"
        for (address, password) in entries {
            let r = try run(ServerProcess.binary, ["passwd", "--users", path, address], input: password + "\n")
            #expect(r.status == 0, "\(r.err)")
        }
        return path
    }

    func register(_ proto: String, _ port: Int, _ user: String, _ password: String? = nil, env: [String: String] = [:]) throws -> String {
        let r = try run("/usr/bin/perl", [Self.netsip, proto, "127.0.0.1", String(port), user] + (password.map { [$0] } ?? []),
                        timeout: 30, env: env)
        return r.out + r.err
    }

    @Test func netSIPDigestOverUDPTCPAndTLS() throws {
        let users = try usersFile([("alice@example.com", "wonderland"), ("bob@example.com", "builder")])
        let s = try ServerProcess.start(["--users", users])
        defer { s.stop() }
        for (proto, port) in [("udp", s.udp), ("tcp", s.tcp), ("tls", s.tls)] {
            #expect(try register(proto, port, "alice", "wonderland").hasPrefix("registered 600"), "\(proto)")
        }
        #expect(try lookup(s, "sip:alice@example.com").status == 0)
        // Wrong password, no password, unknown user: all the same 401.
        #expect(try register("udp", s.udp, "bob", "wrong").contains("Failed with code 401"))
        #expect(try register("tcp", s.tcp, "bob").contains("Failed with code 401"))
        #expect(try register("udp", s.udp, "mallory", "x").contains("Failed with code 401"))
        #expect(try lookup(s, "sip:bob@example.com").status == 1)
        let metrics = try http("GET", s.adminURL + "/metrics").body
        #expect(metrics.contains("sip_auth_success_total{method=\"digest\"} 3"))
        #expect(metrics.contains("sip_auth_failures_total{reason=\"bad_credentials\"} 2"))
    }

    /// A SHA-256 digest client (RFC 7616) over UDP and TCP, speaking plain SIP.
    @Test func sha256DigestOnTheWire() throws {
        let users = try usersFile([("dave@example.com", "s3cure")])
        let s = try ServerProcess.start(["--users", users])
        defer { s.stop() }
        func hex(_ text: String) -> String { OpenSSLHashing.hash(.sha256, Array(text.utf8)).map { String(format: "%02x", $0) }.joined() }
        for transport in ["UDP", "TCP"] {
            let callID = UUID().uuidString
            let send = { (text: String) in transport == "UDP" ? SIPClient.udp(text, port: s.udp) : SIPClient.tcp(text, port: s.tcp) }
            let first = try #require(send(SIPClient.register(user: "dave", contact: "<sip:dave@127.0.0.1:9>", transport: transport,
                                                             callID: callID)))
            #expect(first.hasPrefix("SIP/2.0 401 Unauthorized"))
            let challenge = try #require(first.split(separator: "\r\n").first { $0.hasPrefix("WWW-Authenticate:") && $0.contains("SHA-256") })
            let nonce = try #require(challenge.firstMatch(of: /nonce="([0-9a-f]+)"/)?.1)
            let ha1 = hex("dave:example.com:s3cure"), ha2 = hex("REGISTER:sip:example.com")
            let response = hex("\(ha1):\(nonce):00000001:c0ffee:auth:\(ha2)")
            let auth = "Authorization: Digest username=\"dave\", realm=\"example.com\", nonce=\"\(nonce)\", uri=\"sip:example.com\", "
                + "response=\"\(response)\", algorithm=SHA-256, cnonce=\"c0ffee\", qop=auth, nc=00000001"
            let second = try #require(send(SIPClient.register(user: "dave", contact: "<sip:dave@127.0.0.1:9>", transport: transport,
                                                              callID: callID, cseq: 2, extra: [auth])))
            #expect(second.hasPrefix("SIP/2.0 200 OK"), "\(transport): \(second)")
            // The same credentials again: a replay, refused.
            let replay = try #require(send(SIPClient.register(user: "dave", contact: "<sip:dave@127.0.0.1:9>", transport: transport,
                                                              callID: callID, cseq: 3, extra: [auth])))
            #expect(replay.hasPrefix("SIP/2.0 401"), "\(transport): \(replay)")
        }
        #expect(try lookup(s, "sip:dave@example.com").status == 0)
    }

    @Test func clientCertificateIdentityMatchMismatchAndFallback() throws {
        let dir = NSTemporaryDirectory() + "sipreg-pki-\(UUID().uuidString)"
        #expect(try TestCertificates.script(out: dir, clients: ["alice", "carol"]).status == 0)
        let users = try usersFile([("bob@example.com", "builder"), ("carol@example.com", "c4rol")])
        let s = try ServerProcess.start(["--users", users, "--auth", "digest-or-certificate", "--cert", dir + "/server.pem",
                                         "--key", dir + "/server.key", "--ca", dir + "/ca.pem", "--client-certs", "optional"])
        defer { s.stop() }
        let alice = ["CLIENT_CERT": dir + "/alice.pem", "CLIENT_KEY": dir + "/alice.key"]
        // alice has no password at all: her certificate is her identity.
        #expect(try register("tls", s.tls, "alice", env: alice).hasPrefix("registered"))
        let shown = try http("GET", s.adminURL + "/v1/bindings?aor=sip:alice@example.com").body
        #expect(shown.contains("\"tls_identity\":\"sip:alice@example.com\""), "\(shown)")
        // alice's certificate for carol's address: refused, even with carol's password.
        #expect(try register("tls", s.tls, "carol", "c4rol", env: alice).contains("Failed with code 403"))
        // No certificate: digest.
        #expect(try register("tls", s.tls, "bob", "builder").hasPrefix("registered"))
        #expect(try register("tls", s.tls, "alice").contains("Failed with code 401"))
        #expect(try lookup(s, "sip:carol@example.com").status == 1)
    }

    @Test func certificateModeNeedsACertificate() throws {
        let dir = NSTemporaryDirectory() + "sipreg-pki-\(UUID().uuidString)"
        #expect(try TestCertificates.script(out: dir, clients: ["alice"]).status == 0)
        let s = try ServerProcess.start(["--auth", "certificate", "--cert", dir + "/server.pem", "--key", dir + "/server.key",
                                         "--ca", dir + "/ca.pem", "--client-certs", "optional"])
        defer { s.stop() }
        #expect(try register("tls", s.tls, "alice", env: ["CLIENT_CERT": dir + "/alice.pem", "CLIENT_KEY": dir + "/alice.key"])
            .hasPrefix("registered"))
        #expect(try register("tls", s.tls, "alice").contains("Failed with code 403"))
        #expect(try register("udp", s.udp, "alice").contains("Failed with code 403"))
    }

    @Test func failedAuthenticationsBlockTheSourceThenTheBlockLifts() throws {
        let users = try usersFile([("alice@example.com", "wonderland")])
        let config = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString).yaml"
        try """
            auth:
              users: \(users)
            limits:
              exempt: []
              failed_auth_per_source: 3
              failed_auth_window: 60
              block_seconds: 3
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let s = try ServerProcess.start(["--config", config])
        defer { s.stop() }
        for _ in 0..<4 { #expect(try register("udp", s.udp, "alice", "guess").contains("Failed with code 401")) }
        // Blocked now: even the right password is refused from this source, and TCP from it too.
        #expect(try register("udp", s.udp, "alice", "wonderland").contains("Failed with code 403"))
        #expect(try register("tcp", s.tcp, "alice", "wonderland").contains("Failed with code 403"))
        let metrics = try http("GET", s.adminURL + "/metrics").body
        #expect(metrics.contains("sip_limit_refusals_total{limit=\"failed_auth_per_source\"}"))
        // Logged once for the block, not once per refused request.
        #expect(s.errors.components(separatedBy: "limit reached").count - 1 == 1, "\(s.errors)")
        sleep(4)
        #expect(try register("udp", s.udp, "alice", "wonderland").hasPrefix("registered"))
    }

    @Test func registerRateLimitAnswers503() throws {
        let config = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString).yaml"
        try "limits:\n  exempt: []\n  registers_per_source: 5\n".write(toFile: config, atomically: true, encoding: .utf8)
        let s = try ServerProcess.start(["--config", config])
        defer { s.stop() }
        var codes: [String] = []
        for i in 0..<8 {
            let answer = SIPClient.udp(SIPClient.register(user: "r\(i)", contact: "<sip:r\(i)@127.0.0.1:9>"), port: s.udp) ?? ""
            codes.append(String(answer.prefix(11)))
        }
        #expect(codes.filter { $0 == "SIP/2.0 200" }.count >= 5)
        #expect(codes.contains("SIP/2.0 503"))
        sleep(1)
        let later = SIPClient.udp(SIPClient.register(user: "late", contact: "<sip:late@127.0.0.1:9>"), port: s.udp) ?? ""
        #expect(later.hasPrefix("SIP/2.0 200"))
    }

    @Test func svwarLearnsNoExtension() throws {
        let users = try usersFile([("100@example.com", "pw100"), ("150@example.com", "pw150"), ("199@example.com", "pw199")])
        let s = try ServerProcess.start(["--users", users])
        defer { s.stop() }
        for method in ["REGISTER", "INVITE", "OPTIONS"] {
            let started = Date()
            let r = try run("/usr/bin/svwar", ["--force", "-e100-200", "-m", method, "--domain", "example.com", "-p", String(s.udp),
                                              "-P", String(freeLoopbackPort(SOCK_DGRAM)), "127.0.0.1"], timeout: 120)
            let text = r.out + r.err
            #expect(Date().timeIntervalSince(started) < 110, "\(method): svwar did not finish")
            #expect(text.contains("found nothing"), "\(method): \(text.suffix(600))")
            for ext in ["100", "150", "199"] {
                #expect(!text.contains("| \(ext) "), "\(method) found \(ext)")
            }
        }
    }

    @Test func passwdStoresOnlyHashesAndKeepsAliases() throws {
        let path = NSTemporaryDirectory() + "sipreg-users-\(UUID().uuidString)"
        var r = try run(ServerProcess.binary, ["passwd", "--users", path, "--alias", "al@example.org", "alice@example.com"], input: "s3cret\n")
        #expect(r.status == 0 && r.out == "added alice@example.com in \(path)\n", "\(r.err)")
        r = try run(ServerProcess.binary, ["passwd", "--users", path, "alice@example.com"], input: "n3w\n")
        #expect(r.out.hasPrefix("updated"))
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains("s3cret") && !text.contains("n3w"))
        #expect(text.contains("alice@example.com md5=") && text.contains("sha-256=") && text.contains("aliases=al@example.org"))
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        r = try run(ServerProcess.binary, ["passwd", "--users", path, "alice"], input: "x\n")
        #expect(r.status == 2 && r.err == "sip-registrar: 'alice' is not USER@DOMAIN\n")
        r = try run(ServerProcess.binary, ["passwd", "--users", path, "bob@example.com"], input: "")
        #expect(r.status == 2 && r.err.contains("password"))
    }

    @Test func authConfigurationErrorsAndTheOpenWarning() throws {
        func fails(_ args: [String]) throws -> String {
            let r = try run(ServerProcess.binary, ["serve", "--udp", "127.0.0.1:0", "--admin", "off", "--store", "memory"] + args,
                            cwd: NSTemporaryDirectory())
            #expect(r.status == 2, "\(args): \(r.err)")
            return r.err.trimmingCharacters(in: .newlines)
        }
        #expect(try fails(["--auth", "digest"]) == "sip-registrar: --auth digest needs a users file (--users FILE; sip-registrar passwd makes one)")
        #expect(try fails(["--auth", "certificate"]) == "sip-registrar: --auth certificate needs --client-certs optional or required (and --ca FILE)")
        #expect(try fails(["--auth", "sometimes"]).hasPrefix("sip-registrar: --auth must be one of off, digest, certificate, digest-or-certificate"))
        let bad = NSTemporaryDirectory() + "sipreg-users-\(UUID().uuidString)"
        try "# users\nalice@example.com md5=123\n".write(toFile: bad, atomically: true, encoding: .utf8)
        #expect(try fails(["--users", bad]) == "sip-registrar: \(bad):2: md5 must be 32 hex digits")
        #expect(try fails(["--users", "/no/such/users"]) == "sip-registrar: /no/such/users: cannot read the users file")
        let s = try ServerProcess.start()
        defer { s.stop() }
        #expect(s.waitForLog("authentication is OFF"), "\(s.errors)")
    }
}

/// A UDP port nobody uses right now.
