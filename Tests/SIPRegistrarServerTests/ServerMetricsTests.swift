import SIPMessage
import SIPProxy
import SIPRegistrar
@testable import SIPRegistrarServer
import Testing

/// The per-message counters, read back from the Prometheus text the admin API serves.
@Suite struct ServerMetricsTests {
    /// The value of the sample `name{labels}` in `text`, or nil when there is none.
    func sample(_ text: String, _ name: String, _ labels: String) -> Int? {
        let prefix = "\(name){\(labels)} "
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(prefix) }) else { return nil }
        return Int(line.dropFirst(prefix.count))
    }

    func binding() -> Binding {
        Binding(aor: "alice@example.com", uri: "sip:alice@192.0.2.10:5060", scheme: .sip, expiresAt: 1_700_000_600_000,
                updatedAt: 1_700_000_000_000, callID: "c1@192.0.2.10", cseq: 1, transport: .udp,
                sourceHost: "192.0.2.10", sourcePort: 5060)
    }

    @Test func requestsAreCountedByMethodAndTransportAndUnknownMethodsAsOther() {
        let m = ServerMetrics()
        m.requestReceived(.register, .udp)
        m.requestReceived(.register, .udp)
        m.requestReceived(.register, .tls)
        m.requestReceived("PUBLISH", .wss)
        m.requestReceived("XYZZY", .udp)
        m.requestReceived("PLUGH", .udp)
        let text = m.text()
        #expect(sample(text, "sip_requests_total", #"method="REGISTER",transport="udp""#) == 2, "\(text)")
        #expect(sample(text, "sip_requests_total", #"method="REGISTER",transport="tls""#) == 1, "\(text)")
        #expect(sample(text, "sip_requests_total", #"method="PUBLISH",transport="wss""#) == 1, "\(text)")
        #expect(sample(text, "sip_requests_total", #"method="other",transport="udp""#) == 2, "\(text)")
        #expect(!text.contains("XYZZY") && !text.contains("PLUGH"))
    }

    @Test func responsesAreCountedByCodeAndTransportIncludingCodesOutsideTheTable() {
        let m = ServerMetrics()
        m.responseSent(200, .udp)
        m.responseSent(200, .udp)
        m.responseSent(100, .tcp)
        m.responseSent(699, .ws)
        m.responseSent(99, .udp)
        m.responseSent(700, .udp)
        let text = m.text()
        #expect(sample(text, "sip_responses_total", #"code="200",transport="udp""#) == 2, "\(text)")
        #expect(sample(text, "sip_responses_total", #"code="100",transport="tcp""#) == 1, "\(text)")
        #expect(sample(text, "sip_responses_total", #"code="699",transport="ws""#) == 1, "\(text)")
        #expect(sample(text, "sip_responses_total", #"code="99",transport="udp""#) == 1, "\(text)")
        #expect(sample(text, "sip_responses_total", #"code="700",transport="udp""#) == 1, "\(text)")
    }

    @Test func bindingEventsAreCountedByKind() {
        let m = ServerMetrics()
        let b = binding()
        for e in [BindingEvent.created(b), .refreshed(b), .refreshed(b), .removed(b), .expired(b), .expired(b), .expired(b)] {
            m.bindingEvent(e)
        }
        let text = m.text()
        #expect(sample(text, "sip_registrations_total", #"event="created""#) == 1, "\(text)")
        #expect(sample(text, "sip_registrations_total", #"event="refreshed""#) == 2, "\(text)")
        #expect(sample(text, "sip_registrations_total", #"event="removed""#) == 1, "\(text)")
        #expect(sample(text, "sip_registrations_total", #"event="expired""#) == 3, "\(text)")
    }

    @Test func proxyFamiliesAreCountedByTheirLabels() {
        let m = ServerMetrics()
        m.proxyForwarded(.invite)
        m.proxyForwarded(.invite)
        m.proxyForwarded("XYZZY")
        for o in [BranchOutcome.answered(statusCode: 200), .answered(statusCode: 486), .answered(statusCode: 487),
                  .answered(statusCode: 99), .timedOut, .transportError, .flowFailed(statusCode: 430)] {
            m.proxyBranchEnded(o)
        }
        m.proxyFinished(.invite, code: 200)
        m.proxyFinished(.invite, code: 200)
        m.proxyFinished(.bye, code: 481)
        m.proxyFinished("XYZZY", code: 1000)
        let text = m.text()
        #expect(sample(text, "sip_proxy_forwarded_total", #"method="INVITE""#) == 2, "\(text)")
        #expect(sample(text, "sip_proxy_forwarded_total", #"method="other""#) == 1, "\(text)")
        #expect(sample(text, "sip_proxy_branches_total", #"outcome="2xx""#) == 1, "\(text)")
        #expect(sample(text, "sip_proxy_branches_total", #"outcome="4xx""#) == 2, "\(text)")
        #expect(sample(text, "sip_proxy_branches_total", #"outcome="0xx""#) == 1, "\(text)")
        #expect(sample(text, "sip_proxy_branches_total", #"outcome="timeout""#) == 1, "\(text)")
        #expect(sample(text, "sip_proxy_branches_total", #"outcome="transport_error""#) == 1, "\(text)")
        #expect(sample(text, "sip_proxy_branches_total", #"outcome="flow_failed""#) == 1, "\(text)")
        #expect(sample(text, "sip_proxy_final_responses_total", #"method="INVITE",code="200""#) == 2, "\(text)")
        #expect(sample(text, "sip_proxy_final_responses_total", #"method="BYE",code="481""#) == 1, "\(text)")
        #expect(sample(text, "sip_proxy_final_responses_total", #"method="other",code="1000""#) == 1, "\(text)")
    }

    /// Threads racing to fill the same empty slot end with one counter holding every increment.
    @Test func concurrentFirstUsesShareOneCounter() async {
        let m = ServerMetrics()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 {
                group.addTask {
                    for _ in 0..<5_000 {
                        m.requestReceived(.invite, .tcp)
                        m.responseSent(180, .tcp)
                    }
                }
            }
        }
        let text = m.text()
        #expect(sample(text, "sip_requests_total", #"method="INVITE",transport="tcp""#) == 40_000, "\(text)")
        #expect(sample(text, "sip_responses_total", #"code="180",transport="tcp""#) == 40_000, "\(text)")
    }
}
