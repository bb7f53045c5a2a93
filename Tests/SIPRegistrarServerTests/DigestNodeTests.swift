import Foundation
import SIPTLS
import SIPTestSupport
import Testing

/// Digest across nodes that share `auth.secret_file`, and `auth.algorithms`, on the real server.
@Suite(.serialized) struct ServerDigestNodeTests {
    func tempFile(_ name: String, _ text: String) throws -> String {
        let path = NSTemporaryDirectory() + "sipreg-\(name)-\(UUID().uuidString)"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    func usersFile(_ address: String, _ password: String) throws -> String {
        let path = NSTemporaryDirectory() + "sipreg-users-\(UUID().uuidString)"
        let r = try run(ServerProcess.binary, ["passwd", "--users", path, address], input: password + "\n")
        #expect(r.status == 0, "\(r.err)")
        return path
    }

    func hex(_ algorithm: OpenSSLHashing.Algorithm, _ text: String) -> String {
        OpenSSLHashing.hash(algorithm, Array(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// The Authorization answering `challenge` (its first WWW-Authenticate for `algorithm`) as dave.
    func authorization(_ challenge: String, algorithm: String = "SHA-256") throws -> String {
        let line = try #require(challenge.split(separator: "\r\n").first { $0.hasPrefix("WWW-Authenticate:") && $0.contains("algorithm=\(algorithm)") })
        let nonce = try #require(line.firstMatch(of: /nonce="([0-9a-f]+)"/)?.1)
        let h: OpenSSLHashing.Algorithm = algorithm == "MD5" ? .md5 : .sha256
        let ha1 = hex(h, "dave:example.com:s3cure"), ha2 = hex(h, "REGISTER:sip:example.com")
        let response = hex(h, "\(ha1):\(nonce):00000001:c0ffee:auth:\(ha2)")
        return "Authorization: Digest username=\"dave\", realm=\"example.com\", nonce=\"\(nonce)\", uri=\"sip:example.com\", "
            + "response=\"\(response)\", algorithm=\(algorithm), cnonce=\"c0ffee\", qop=auth, nc=00000001"
    }

    func register(_ port: Int, callID: String, cseq: Int, extra: [String] = []) throws -> String {
        try #require(SIPClient.udp(SIPClient.register(user: "dave", contact: "<sip:dave@127.0.0.1:9>", callID: callID, cseq: cseq,
                                                      extra: extra), port: port))
    }

    /// Two nodes share the nonce key: a REGISTER captured on its way to node A and replayed to node B
    /// gets a fresh challenge (stale=true) from B, not a 200.
    @Test func aCapturedAuthorizationIsNotAcceptedByAnotherNode() throws {
        let secret = try tempFile("secret", "0123456789abcdef0123456789abcdef\n")
        let config = try tempFile("config", "auth:\n  secret_file: \(secret)\n")
        let users = try usersFile("dave@example.com", "s3cure")
        let a = try ServerProcess.start(["--config", config, "--users", users], env: ["SIP_REGISTRAR_NODE": "node-a"])
        defer { a.stop() }
        let b = try ServerProcess.start(["--config", config, "--users", users], env: ["SIP_REGISTRAR_NODE": "node-b"])
        defer { b.stop() }
        let callID = UUID().uuidString
        let challenge = try register(a.udp, callID: callID, cseq: 1)
        #expect(challenge.hasPrefix("SIP/2.0 401"))
        let auth = try authorization(challenge)
        #expect(try register(a.udp, callID: callID, cseq: 2, extra: [auth]).hasPrefix("SIP/2.0 200 OK"))
        // The captured request, replayed to the other node.
        let replay = try register(b.udp, callID: callID, cseq: 2, extra: [auth])
        #expect(replay.hasPrefix("SIP/2.0 401"), "\(replay)")
        let challenges = replay.split(separator: "\r\n").filter { $0.hasPrefix("WWW-Authenticate:") }
        #expect(challenges.count == 2 && challenges.allSatisfy { $0.contains("stale=true") }, "\(replay)")
        let notThere = try lookup(b, "sip:dave@example.com")
        #expect(notThere.status == 1, "\(notThere)")
        // The real client answers node B's challenge and is registered there too.
        #expect(try register(b.udp, callID: callID, cseq: 3, extra: [try authorization(replay)]).hasPrefix("SIP/2.0 200 OK"))
    }

    @Test func md5TurnedOffInTheConfiguration() throws {
        let config = try tempFile("config", "auth:\n  algorithms: [SHA-256]\n")
        let users = try usersFile("dave@example.com", "s3cure")
        let s = try ServerProcess.start(["--config", config, "--users", users])
        defer { s.stop() }
        let callID = UUID().uuidString
        let challenge = try register(s.udp, callID: callID, cseq: 1)
        let challenges = challenge.split(separator: "\r\n").filter { $0.hasPrefix("WWW-Authenticate:") }
        #expect(challenges.count == 1 && challenges.first?.contains("algorithm=SHA-256") == true, "\(challenge)")
        // An MD5 answer with the right password: refused with a fresh (SHA-256 only) challenge.
        let md5 = try authorization(challenge.replacing("algorithm=SHA-256", with: "algorithm=MD5"), algorithm: "MD5")
        let refused = try register(s.udp, callID: callID, cseq: 2, extra: [md5])
        #expect(refused.hasPrefix("SIP/2.0 401") && !refused.contains("stale=true") && !refused.contains("algorithm=MD5"), "\(refused)")
        #expect(try register(s.udp, callID: callID, cseq: 3, extra: [try authorization(refused)]).hasPrefix("SIP/2.0 200 OK"))
    }

    @Test func unknownAlgorithmStopsStartUpNamingFileAndLine() throws {
        let config = try tempFile("config", "auth:\n  algorithms: [SHA-256, SHA-1]\n")
        let r = try run(ServerProcess.binary, ["serve", "--config", config, "--udp", "127.0.0.1:0", "--admin", "off", "--store", "memory"],
                        cwd: NSTemporaryDirectory())
        #expect(r.status == 2)
        #expect(r.err.trimmingCharacters(in: .newlines)
                == "sip-registrar: \(config):2: auth.algorithms: unknown algorithm 'SHA-1' (expected SHA-256, MD5)")
        let empty = try tempFile("config", "auth:\n  algorithms: []\n")
        let e = try run(ServerProcess.binary, ["serve", "--config", empty, "--udp", "127.0.0.1:0", "--admin", "off", "--store", "memory"],
                        cwd: NSTemporaryDirectory())
        #expect(e.err.trimmingCharacters(in: .newlines) == "sip-registrar: \(empty):2: auth.algorithms must be a non-empty list of SHA-256, MD5")
    }
}
