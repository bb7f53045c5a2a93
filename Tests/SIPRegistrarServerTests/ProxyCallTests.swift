import Foundation
import SIPTestSupport
import Testing

/// The proxy (`registrar.non_register: proxy`, the default) from outside, with hand-built
/// SIP over real sockets (`proxy/calls.py`): each callee registers a contact that cannot be
/// reached (192.0.2.0/24), so a request that reaches it came over its flow or to the source
/// address of its REGISTER. Real softphones calling each other are in the softphone tests.
@Suite(.serialized) struct ProxyCallTests {
    static let script = PackageRoot.path("Tests/SIPRegistrarServerTests/proxy/calls.py")

    @discardableResult
    func play(_ scenario: String, _ extra: [String] = [], password: String? = nil,
              after: ((ServerProcess) throws -> Void)? = nil) throws -> ServerProcess {
        let s = try ServerProcess.start(["--domain", "example.com"] + extra)
        defer { s.stop() }
        let r = try run("/usr/bin/python3", [Self.script, scenario, String(s.udp), String(s.tcp), String(s.tls)] + (password.map { [$0] } ?? []),
                        timeout: 60)
        #expect(r.status == 0 && r.out.hasSuffix("OK\n"), "\(scenario): \(r.out)\(r.err)\nserver: \(s.errors.suffix(2000))")
        try after?(s)
        return s
    }

    @Test func udpCallToAContactBehindNAT() throws {
        try play("udp") { s in
            // Observability: forwarded requests by method, branches by outcome, final responses by code.
            let metrics = try http("GET", s.adminURL + "/metrics").body
            for line in ["sip_proxy_forwarded_total{method=\"INVITE\"} 1", "sip_proxy_forwarded_total{method=\"ACK\"} 1",
                         "sip_proxy_forwarded_total{method=\"BYE\"} 1", "sip_proxy_branches_total{outcome=\"2xx\"} 2",
                         "sip_proxy_final_responses_total{method=\"INVITE\",code=\"200\"} 1",
                         // Still held: on UDP the transactions linger for the retransmissions (Timers K, M, RFC 6026).
                         "# TYPE sip_proxy_transactions gauge"] {
                #expect(metrics.contains(line), "\(line) in\n\(metrics)")
            }
        }
    }

    @Test func failedCallSetUpIsLoggedWithItsReason() throws {
        try play("refusals", ["--log-level", "info"]) { s in
            #expect(s.waitForLog("call set-up failed"), "\(s.errors)")
        }
    }

    @Test func callOverTheCalleesTLSFlow() throws { try play("tls") }

    @Test func sipsNeverLeavesOverANonTLSHop() throws { try play("sips") }

    @Test func cancelEndsTheCallWith487() throws { try play("cancel") }

    @Test func refusalsAndFailedFlows() throws { try play("refusals") }

    @Test func localCallersAreChallengedWith407() throws {
        let users = NSTemporaryDirectory() + "sipreg-users-\(UUID().uuidString)"
        let r = try run(ServerProcess.binary, ["passwd", "--users", users, "alice@example.com"], input: "wonderland\n")
        #expect(r.status == 0, "\(r.err)")
        try play("auth", ["--users", users], password: "wonderland")
    }
}
