import Foundation
import SIPTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Real softphones (baresip 1.0, linphonec 5.1) call each other through the built server's
/// proxy: the caller's INVITE goes to the server, which forwards it over the callee's flow
/// (or to its REGISTER's source address over UDP) and Record-Routes itself, so ACK and BYE
/// come back through it as well. Skipped when the softphones are not installed.
///
/// To see why a call fails: `SOFTPHONE_CALL_DEBUG=1` runs the server with `--log-level debug`
/// and baresip with its SIP trace; `SOFTPHONE_CALL_DUMP=/tmp/calls` also writes each test's
/// phone output, linphonec logs and server log to `/tmp/calls-NAME`.
struct SoftphoneCallTests {
    /// A server with a development certificate (SAN localhost, 127.0.0.1, example.com) for `example.com`.
    func tlsServer() throws -> (server: ServerProcess, pki: String) {
        let debug = ProcessInfo.processInfo.environment["SOFTPHONE_CALL_DEBUG"] != nil ? ["--log-level", "debug"] : []
        return try Softphones.tlsServer(["--domain", "example.com"] + debug)
    }

    /// The value of the sample `name{labels}` in the server's /metrics (0 when absent).
    func metric(_ s: ServerProcess, _ sample: String) throws -> Double {
        let body = try http("GET", s.adminURL + "/metrics").body
        for line in body.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.dropFirst(sample.count + 1)) ?? 0
        }
        return 0
    }

    /// The proxy's metric lines, for failure messages.
    func proxyMetrics(_ s: ServerProcess) -> String {
        let body = (try? http("GET", s.adminURL + "/metrics").body) ?? ""
        return body.split(separator: "\n").filter { $0.hasPrefix("sip_proxy_") }.joined(separator: "\n")
    }

    /// Waits (bounded) until the sample reaches `atLeast`: counters are bumped as the
    /// proxy forwards, which may be a moment after the phones report.
    func metricReaches(_ s: ServerProcess, _ sample: String, _ atLeast: Double = 1, timeout: TimeInterval = 5) -> Bool {
        eventually(timeout: timeout) { ((try? metric(s, sample)) ?? 0) >= atLeast }
    }

    static var trace: Bool { ProcessInfo.processInfo.environment["SOFTPHONE_CALL_DEBUG"] != nil }

    /// Two baresip with `sip:` AORs on the same transport: bob answers at once; alice dials
    /// `sip:bob@example.com` through the server; one side hangs up (the caller over UDP and
    /// TLS, the callee over TCP).
    @Test(.enabled(if: Softphones.haveBaresip, "baresip is not installed"), arguments: ["udp", "tcp", "tls"])
    func baresipCallsBaresipThroughTheProxy(transport: String) throws {
        let (s, pki) = try tlsServer()
        defer { Softphones.finish(s, pki) }
        let port = ["udp": s.udp, "tcp": s.tcp, "tls": s.tls][transport]!
        let bob = try Baresip(user: "bob", transport: transport, serverPort: port, trace: Self.trace)
        defer { bob.stop() }
        let alice = try Baresip(user: "alice", transport: transport, serverPort: port, trace: Self.trace)
        defer { alice.stop() }
        try #require(bob.waitRegistered(), "\(bob.allEvents) \(bob.output)")
        try #require(alice.waitRegistered(), "\(alice.allEvents) \(alice.output)")

        try alice.dial("sip:bob@example.com")
        defer { dump(transport, [("alice", alice.output), ("bob", bob.output), ("server", s.errors)]) }
        let context = { "alice:\n\(alice.output)\nbob:\n\(bob.output)\nserver:\n\(s.errors)\n\(proxyMetrics(s))" }
        try #require(alice.waitFor("CALL_ESTABLISHED") != nil, "\(alice.allEvents)\n\(context())")
        let answered = try #require(bob.waitFor("CALL_ESTABLISHED"), "\(bob.allEvents)\n\(context())")
        // Each side sees the other's AOR, not a contact.
        #expect(answered.fields["peeruri"] == "sip:alice@example.com", "\(answered)")
        #expect(alice.allEvents.first { $0.type == "CALL_ESTABLISHED" }?.fields["peeruri"]?.hasPrefix("sip:bob@example.com") == true,
                "\(alice.allEvents)")

        let callerHangsUp = transport != "tcp"
        try (callerHangsUp ? alice : bob).hangup()
        #expect(alice.waitFor("CALL_CLOSED") != nil, "\(alice.allEvents)\n\(context())")
        #expect(bob.waitFor("CALL_CLOSED") != nil, "\(bob.allEvents)\n\(context())")

        #expect(metricReaches(s, "sip_proxy_forwarded_total{method=\"INVITE\"}"), "\(proxyMetrics(s))")
        #expect(metricReaches(s, "sip_proxy_forwarded_total{method=\"ACK\"}"), "\(proxyMetrics(s))")
        #expect(metricReaches(s, "sip_proxy_forwarded_total{method=\"BYE\"}"), "\(proxyMetrics(s))")
        #expect(metricReaches(s, "sip_proxy_final_responses_total{method=\"INVITE\",code=\"200\"}"), "\(proxyMetrics(s))")
    }

    /// Waits until linphonec's binding under `aor` is its re-registered one: a port where
    /// nothing listens, so only its flow reaches it. Returns that contact (nil on timeout).
    func flowOnlyContact(_ s: ServerProcess, _ aor: String) -> String? {
        var contact: String?
        _ = eventually(timeout: 10) {
            guard let found = try? lookup(s, aor), found.status == 0, found.lines.count == 1, let line = found.lines.first,
                  let port = line.firstMatch(of: /@127\.0\.0\.1:(\d+)/)?.1, let p = Int(port) else { return false }
            guard !Softphones.accepts(port: p) else { return false }
            contact = line
            return true
        }
        return contact
    }

    func dump(_ name: String, _ parts: [(String, String)]) {
        guard let dir = ProcessInfo.processInfo.environment["SOFTPHONE_CALL_DUMP"] else { return }
        try? parts.map { "==== \($0.0)\n\($0.1)" }.joined(separator: "\n")
            .write(toFile: dir + "-" + name, atomically: true, encoding: .utf8)
    }

    /// A strict `sips:` call between two linphonec over verified TLS: bob (auto-answer) is
    /// reachable only through the flow he registered on, so the INVITE must go over it.
    @Test(.enabled(if: Softphones.haveLinphonec, "linphonec is not installed"))
    func linphonecMakesASipsCallToLinphonecThroughItsFlow() throws {
        let (s, pki) = try tlsServer()
        defer { Softphones.finish(s, pki) }
        let bob = try Linphonec(user: "bob", serverPort: s.tls, caFile: pki + "/ca.pem", outbound: true)
        defer { bob.stop() }
        let alice = try Linphonec(user: "alice", serverPort: s.tls, caFile: pki + "/ca.pem", autoAnswer: false, outbound: true)
        defer { alice.stop() }
        try #require(bob.waitRegistered(), "\(bob.output)")
        try #require(alice.waitRegistered(), "\(alice.output)")
        let contact = try #require(flowOnlyContact(s, "sips:bob@example.com"), "\((try? lookup(s, "sips:bob@example.com"))?.lines ?? [])")
        #expect(contact.hasPrefix("sips:bob@127.0.0.1:"), "\(contact)")
        defer { dump("sips", [("alice", alice.output + alice.log), ("bob", bob.output + bob.log), ("server", s.errors)]) }

        alice.dial("sips:bob@example.com")
        let context = { "alice:\n\(alice.output)\nbob:\n\(bob.output)\nserver:\n\(s.errors)\n\(proxyMetrics(s))" }
        // Standard output: `Call 1 with sips:bob@example.com connected.` / `… with "alice" <sips:alice@example.com> connected.`
        try #require(alice.waitFor("with sips:bob@example.com connected.", timeout: 15), "\(context())")
        try #require(bob.waitFor("<sips:alice@example.com> connected.", timeout: 5), "\(context())")
        alice.hangup()
        #expect(alice.waitFor("with sips:bob@example.com ended ("), "\(context())")
        #expect(bob.waitFor("<sips:alice@example.com> ended ("), "\(context())")

        #expect(metricReaches(s, "sip_proxy_forwarded_total{method=\"INVITE\"}"), "\(proxyMetrics(s))")
        #expect(metricReaches(s, "sip_proxy_forwarded_total{method=\"ACK\"}"), "\(proxyMetrics(s))")
        #expect(metricReaches(s, "sip_proxy_forwarded_total{method=\"BYE\"}"), "\(proxyMetrics(s))")
        #expect(metricReaches(s, "sip_proxy_final_responses_total{method=\"INVITE\",code=\"200\"}"), "\(proxyMetrics(s))")
    }

    /// A `sips:` call to someone registered only over UDP (a `sip:` contact) is refused with
    /// 480 (Warning 380) rather than sent unprotected.
    @Test(.enabled(if: Softphones.haveBaresip && Softphones.haveLinphonec, "baresip or linphonec is not installed"))
    func sipsCallToAUserRegisteredOnlyOverUDPIsRefused() throws {
        let (s, pki) = try tlsServer()
        defer { Softphones.finish(s, pki) }
        let carol = try Baresip(user: "carol", transport: "udp", serverPort: s.udp, trace: Self.trace)
        defer { carol.stop() }
        let alice = try Linphonec(user: "alice", serverPort: s.tls, caFile: pki + "/ca.pem", autoAnswer: false, outbound: true)
        defer { alice.stop() }
        try #require(carol.waitRegistered(), "\(carol.allEvents)")
        try #require(alice.waitRegistered(), "\(alice.output)")
        defer { dump("refused", [("alice", alice.output + alice.log), ("carol", carol.output), ("server", s.errors)]) }

        alice.dial("sips:carol@example.com")
        let context = { "alice:\n\(alice.output)\nserver:\n\(s.errors)\n\(proxyMetrics(s))" }
        #expect(metricReaches(s, "sip_proxy_final_responses_total{method=\"INVITE\",code=\"480\"}", timeout: 10), "\(context())")
        // Its log holds the response; standard output says `Call 1 with sips:carol@example.com error.`
        #expect(alice.waitFor("SIP/2.0 480 Temporarily Unavailable", timeout: 5), "\(context())")
        #expect(alice.log.contains("Warning: 380 "), "\(context())")
        #expect(alice.waitFor("with sips:carol@example.com error.", timeout: 5), "\(context())")
        #expect(!alice.output.contains("connected."), "\(context())")
        // Nothing reached carol.
        #expect(!carol.allEvents.contains { $0.type.hasPrefix("CALL_") }, "\(carol.allEvents)")
        #expect(((try? metric(s, "sip_proxy_forwarded_total{method=\"INVITE\"}")) ?? 0) == 0, "\(proxyMetrics(s))")
    }

    /// baresip over TLS calls linphonec (a `sip:` identity over TLS, reachable only through its
    /// flow) through the server; the callee hangs up.
    @Test(.enabled(if: Softphones.haveBaresip && Softphones.haveLinphonec, "baresip or linphonec is not installed"))
    func baresipCallsLinphonecOverTLSThroughTheProxy() throws {
        let (s, pki) = try tlsServer()
        defer { Softphones.finish(s, pki) }
        let bob = try Linphonec(user: "bob", serverPort: s.tls, caFile: pki + "/ca.pem", scheme: "sip", outbound: true)
        defer { bob.stop() }
        let alice = try Baresip(user: "alice", transport: "tls", serverPort: s.tls, trace: Self.trace)
        defer { alice.stop() }
        try #require(bob.waitRegistered(), "\(bob.output)")
        try #require(alice.waitRegistered(), "\(alice.allEvents)")
        let contact = try #require(flowOnlyContact(s, "sip:bob@example.com"), "\((try? lookup(s, "sip:bob@example.com"))?.lines ?? [])")
        #expect(contact.hasPrefix("sip:bob@127.0.0.1:"), "\(contact)")
        defer { dump("mixed", [("alice", alice.output), ("bob", bob.output + bob.log), ("server", s.errors)]) }

        try alice.dial("sip:bob@example.com")
        let context = { "alice:\n\(alice.output)\nbob:\n\(bob.output)\nserver:\n\(s.errors)\n\(proxyMetrics(s))" }
        try #require(alice.waitFor("CALL_ESTABLISHED", timeout: 15) != nil, "\(alice.allEvents)\n\(context())")
        try #require(bob.waitFor("with sip:alice@example.com connected.", timeout: 5), "\(context())")
        bob.hangup()
        #expect(bob.waitFor("with sip:alice@example.com ended ("), "\(context())")
        #expect(alice.waitFor("CALL_CLOSED") != nil, "\(alice.allEvents)\n\(context())")

        #expect(metricReaches(s, "sip_proxy_forwarded_total{method=\"INVITE\"}"), "\(proxyMetrics(s))")
        #expect(metricReaches(s, "sip_proxy_forwarded_total{method=\"BYE\"}"), "\(proxyMetrics(s))")
    }
}
