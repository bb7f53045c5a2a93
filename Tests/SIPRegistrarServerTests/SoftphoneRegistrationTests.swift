import Foundation
import SIPTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real softphones (baresip 1.0, linphonec 5.1) register through the built server; skipped
/// when they are not installed.
struct SoftphoneRegistrationTests {
    /// A server with a development certificate (SAN localhost, 127.0.0.1, example.com).
    func tlsServer() throws -> (server: ServerProcess, pki: String) { try Softphones.tlsServer() }

    @Test(.enabled(if: Softphones.haveBaresip, "baresip is not installed"), arguments: ["udp", "tcp", "tls"])
    func baresipRegistersAndUnregisters(transport: String) throws {
        let (s, pki) = try tlsServer()
        defer { Softphones.finish(s, pki) }
        let port = ["udp": s.udp, "tcp": s.tcp, "tls": s.tls][transport]!
        let phone = try Baresip(user: "alice", transport: transport, serverPort: port)
        defer { phone.stop() }
        #expect(phone.waitRegistered(), "\(phone.allEvents) \(phone.output)")
        let found = try lookup(s, "sip:alice@example.com")
        #expect(found.status == 0)
        #expect(found.lines.count == 1, "\(found.lines)")
        let contact = found.lines.first ?? ""
        // baresip's own user part and its listening address on loopback.
        #expect(contact.hasPrefix("sip:alice-0x") && contact.contains("@127.0.0.1:"), "\(contact)")
        #expect(contact.hasSuffix(transport == "udp" ? "" : ";transport=\(transport)") && !contact.contains("sips:"), "\(contact)")
        // Not a SIPS contact, so not found under the sips: AOR (RFC 5630).
        #expect(try lookup(s, "sips:alice@example.com").status == 1)
        // Stopping unregisters.
        phone.stop()
        #expect(eventually(timeout: 5) { (try? lookup(s, "sip:alice@example.com").status) == 1 })
    }

    @Test(.enabled(if: Softphones.haveLinphonec, "linphonec is not installed"))
    func linphonecRegistersASipsContactOverVerifiedTLS() throws {
        let (s, pki) = try tlsServer()
        defer { Softphones.finish(s, pki) }
        let phone = try Linphonec(user: "alice", serverPort: s.tls, caFile: pki + "/ca.pem")
        defer { phone.stop() }
        #expect(phone.waitRegistered(), "\(phone.output)")
        #expect(phone.log.contains("SSL handshake finished"))
        // After the first 200 it re-registers its Contact on the connection's source port, where
        // nothing listens: reachable only through the flow.
        var contact = ""
        let unreachable = eventually(timeout: 5) {
            let found = try? lookup(s, "sips:alice@example.com")
            guard let line = found?.lines.first, found?.status == 0, found?.lines.count == 1 else { return false }
            contact = line
            return !Softphones.accepts(port: Int(line.split(separator: ":").last ?? "") ?? 0)
        }
        #expect(contact.hasPrefix("sips:alice@127.0.0.1:"), "\(contact)")
        #expect(unreachable, "\(contact)")
        // Found under the sip: AOR as well (a sips: contact serves both).
        #expect(try lookup(s, "sip:alice@example.com").lines == [contact])
        phone.stop()
        #expect(eventually(timeout: 5) { (try? lookup(s, "sips:alice@example.com").status) == 1 })
    }

    @Test(.enabled(if: Softphones.haveLinphonec, "linphonec is not installed"))
    func linphonecRefusesACertificateFromAnotherCAUnlessTold() throws {
        let (s, pki) = try tlsServer()
        defer { Softphones.finish(s, pki) }
        let other = try Softphones.makePKI()
        defer { try? FileManager.default.removeItem(atPath: other) }
        let phone = try Linphonec(user: "alice", serverPort: s.tls, caFile: other + "/ca.pem")
        defer { phone.stop() }
        #expect(!phone.waitRegistered(), "\(phone.output)")
        #expect(phone.log.contains("Certificate verification failed"))
        #expect(try lookup(s, "sips:alice@example.com").status == 1)
        // verify_server_certs=0, verify_server_cn=0: anything goes.
        let careless = try Linphonec(user: "bob", serverPort: s.tls, caFile: other + "/ca.pem", verify: false)
        defer { careless.stop() }
        #expect(careless.waitRegistered(), "\(careless.output)")
        #expect(try lookup(s, "sips:bob@example.com").status == 0)
    }

    /// Digest: linphonec answers the default SHA-256 challenge; baresip 1.0 (libre) gives up on
    /// the first challenge whose algorithm is not MD5 ("Function not implemented"), so it only
    /// authenticates when the server offers MD5 alone.
    @Test(.enabled(if: Softphones.haveBaresip && Softphones.haveLinphonec, "baresip or linphonec is not installed"))
    func softphonesAuthenticateWithDigest() throws {
        let pki = try Softphones.makePKI()
        defer { try? FileManager.default.removeItem(atPath: pki) }
        let users = pki + "/users"
        for (address, password) in [("alice@example.com", "wonderland"), ("bob@example.com", "builder")] {
            #expect(try run(ServerProcess.binary, ["passwd", "--users", users, address], input: password + "\n").status == 0)
        }
        let tls = ["--users", users, "--cert", pki + "/server.pem", "--key", pki + "/server.key"]
        do {
            let s = try ServerProcess.start(tls)
            defer { s.stop(); try? FileManager.default.removeItem(atPath: s.dataDir) }
            let bob = try Linphonec(user: "bob", serverPort: s.tls, caFile: pki + "/ca.pem", password: "builder")
            defer { bob.stop() }
            #expect(bob.waitRegistered(), "\(bob.output)")
            // Its log holds the messages with CRLF line ends (one Character in Swift).
            let answers = bob.log.split(whereSeparator: \.isNewline).filter { $0.hasPrefix("Authorization:") }
            #expect(!answers.isEmpty && answers.allSatisfy { $0.contains("algorithm=SHA-256") }, "\(answers)")
            let alice = try Baresip(user: "alice", transport: "udp", serverPort: s.udp, password: "wonderland")
            defer { alice.stop() }
            #expect(!alice.waitRegistered())
            #expect(alice.waitFor("REGISTER_FAIL")?.param == "Function not implemented", "\(alice.allEvents)")
        }
        let md5Only = pki + "/md5.yaml"
        try "auth:\n  algorithms: [MD5]\n".write(toFile: md5Only, atomically: true, encoding: .utf8)
        let s = try ServerProcess.start(["--config", md5Only] + tls)
        defer { s.stop(); try? FileManager.default.removeItem(atPath: s.dataDir) }
        for transport in ["udp", "tcp", "tls"] {
            let port = ["udp": s.udp, "tcp": s.tcp, "tls": s.tls][transport]!
            let alice = try Baresip(user: "alice", transport: transport, serverPort: port, password: "wonderland")
            #expect(alice.waitRegistered(), "\(transport): \(alice.allEvents)")
            #expect(try lookup(s, "sip:alice@example.com").lines.count == 1)
            alice.stop()
        }
        let wrong = try Baresip(user: "alice", transport: "udp", serverPort: s.udp, password: "looking-glass")
        defer { wrong.stop() }
        #expect(!wrong.waitRegistered())
        #expect(wrong.waitFor("REGISTER_FAIL")?.param == "401 Unauthorized", "\(wrong.allEvents)")
        let bob = try Linphonec(user: "bob", serverPort: s.tls, caFile: pki + "/ca.pem", password: "builder")
        defer { bob.stop() }
        #expect(bob.waitRegistered(), "\(bob.output)")
    }

    /// dial / answer / hang up without the server routing anything: the caller has no
    /// outbound proxy and dials the callee's registered contact.
    @Test(.enabled(if: Softphones.haveBaresip, "baresip is not installed"))
    func baresipCallsAnotherBaresipDirectly() throws {
        let (s, pki) = try tlsServer()
        defer { Softphones.finish(s, pki) }
        let bob = try Baresip(user: "bob", transport: "udp", serverPort: s.udp)
        defer { bob.stop() }
        #expect(bob.waitRegistered())
        let contact = try #require(try lookup(s, "sip:bob@example.com").lines.first)
        let carol = try Baresip(user: "carol", transport: "udp", serverPort: nil)
        defer { carol.stop() }
        try carol.dial(contact)
        #expect(carol.waitFor("CALL_ESTABLISHED") != nil, "\(carol.allEvents)")
        #expect(bob.waitFor("CALL_ESTABLISHED") != nil, "\(bob.allEvents)")
        try carol.hangup()
        #expect(carol.waitFor("CALL_CLOSED") != nil)
        #expect(bob.waitFor("CALL_CLOSED") != nil, "\(bob.allEvents)")
    }

    /// linphonec's call / terminate, directly to a baresip that has a certificate for
    /// localhost from the same CA (linphonec verifies it).
    @Test(.enabled(if: Softphones.haveBaresip && Softphones.haveLinphonec, "baresip or linphonec is not installed"))
    func linphonecCallsBaresipDirectlyOverTLS() throws {
        let (s, pki) = try tlsServer()
        defer { Softphones.finish(s, pki) }
        let bundle = pki + "/baresip.pem"
        try (String(contentsOfFile: pki + "/server.pem", encoding: .utf8) + String(contentsOfFile: pki + "/server.key", encoding: .utf8))
            .write(toFile: bundle, atomically: true, encoding: .utf8)
        let carol = try Baresip(user: "carol", transport: "tls", serverPort: s.tls, certificate: bundle)
        defer { carol.stop() }
        #expect(carol.waitRegistered())
        // Its Contact names its TLS listening port.
        let contact = try #require(try lookup(s, "sip:carol@example.com").lines.first)
        let port = try #require(contact.firstMatch(of: /@127\.0\.0\.1:(\d+)/)?.1)
        let alice = try Linphonec(user: "alice", serverPort: nil, caFile: pki + "/ca.pem")
        defer { alice.stop() }
        alice.dial("sips:carol@localhost:\(port)")
        #expect(alice.waitFor("connected."), "\(alice.output)")
        #expect(carol.waitFor("CALL_ESTABLISHED") != nil, "\(carol.allEvents)")
        alice.hangup()
        #expect(alice.waitFor("ended ("), "\(alice.output)")
        #expect(carol.waitFor("CALL_CLOSED") != nil, "\(carol.allEvents)")
    }
}
