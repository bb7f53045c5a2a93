import Foundation
import SIPTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Calls across nodes sharing one PostgreSQL store: a callee whose TLS flow is held by
/// node B is reached by a caller of node A through B (node_address, flow tokens signed with
/// the key the nodes share; TLS between the nodes, verified against a private CA), and a flow
/// on a node that cannot be reached fails with 480.
@Suite(.serialized) struct CrossNodeCallTests {
    @Test func aCallReachesTheFlowAnotherNodeHolds() throws {
        let pg = try PostgresServer()
        defer { pg.destroy() }
        let dir = NSTemporaryDirectory() + "sipreg-cross-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try "a-secret-the-nodes-share-0123456789\n".write(toFile: dir + "/secret", atomically: true, encoding: .utf8)
        // The nodes talk TLS to each other, verified against a private CA (tls.ca).
        let pki = try Softphones.makePKI()
        var started: [ServerProcess] = []
        defer { for s in started { s.stop() } }
        for (name, published) in [("node-a", true), ("node-b", true), ("node-c", false)] {
            let port = freeLoopbackPort()
            var yaml = "auth:\n  secret_file: \(dir)/secret\n"
            if published { yaml += "node_address: \"sips:127.0.0.1:\(port)\"\n" }
            let config = dir + "/\(name).yaml"
            try yaml.write(toFile: config, atomically: true, encoding: .utf8)
            started.append(try ServerProcess.start(["--config", config, "--tls", "127.0.0.1:\(port)", "--domain", "example.com",
                                                    "--cert", pki + "/server.pem", "--key", pki + "/server.key", "--ca", pki + "/ca.pem"],
                                                   store: pg.url, env: pg.env.merging(["SIP_REGISTRAR_NODE": name]) { $1 }))
        }
        let (a, b, c) = (started[0], started[1], started[2])
        let r = try run("/usr/bin/python3", [ProxyCallTests.script, "cross", String(a.udp), String(a.tcp), String(a.tls),
                                             String(b.tls), String(c.tls)], timeout: 90)
        #expect(r.status == 0 && r.out.hasSuffix("OK\n"),
                "\(r.out)\(r.err)\nnode A: \(a.errors.suffix(1500))\nnode B: \(b.errors.suffix(1500))")
    }
}
