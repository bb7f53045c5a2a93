import SIPMessage
import Testing
@testable import SIPProxy

@Suite("Where a request goes (RFC 3261 16.5, 16.12; no open relay)")
struct RoutingTests {
    let codec = FlowTokenCodec(key: Array("k".utf8), mac: ProxyFixtures.testMAC)
    let caller = SIPSource(transport: .tls, remoteHost: "203.0.113.1", remotePort: 40001, flowID: 1)

    private func decide(_ r: SIPRequest) -> ProxyRouteDecision {
        ProxyFixtures.validated(r).route(arrivedOn: caller, identity: ProxyFixtures.identity, codec: codec)
    }

    @Test func servedDomainIsLookedUp() {
        #expect(decide(ProxyFixtures.invite()) == .lookUp(SIPURI("sip:bob@example.com")!))
    }

    @Test func foreignDomainIsRefused() {
        guard case .reject(let r) = decide(ProxyFixtures.invite(uri: "sip:carol@elsewhere.net")) else {
            Issue.record("relayed"); return
        }
        #expect(r.statusCode == 403)
    }

    @Test func foreignDomainWithAnUnsignedRouteToUsIsRefused() {
        let r = ProxyFixtures.invite(extra: "Route: <sip:forged@192.0.2.1;lr>", uri: "sip:carol@elsewhere.net")
        guard case .reject = decide(r) else { Issue.record("relayed"); return }
    }

    @Test func requestToUsIsLocal() {
        #expect(decide(ProxyFixtures.invite(uri: "sip:proxy.example.com", method: "OPTIONS")) == .local)
    }

    @Test func inDialogRequestFollowsTheCalleesFlow() throws {
        let callee = FlowToken(flowID: 2, transport: .tls, host: "203.0.113.2", port: 40000)
        let token = try #require(codec.encode(callee))
        let r = ProxyFixtures.invite(extra: "Route: <sip:\(token)@192.0.2.1:5061;transport=tls;lr>",
                                     uri: "sip:bob@10.0.0.2:5062", method: "BYE")
        let v = ProxyFixtures.validated(r)
        let decision = v.route(arrivedOn: caller, identity: ProxyFixtures.identity, codec: codec)
        #expect(decision == .forward(flow: callee))
        let target = v.dialogTarget(flow: callee)
        #expect(target.flowID == 2 && target.transport == .tls && target.uri.host == "10.0.0.2")
    }

    @Test func inDialogRequestFromTheFlowOwnerIsRoutedByItsURI() throws {
        let own = FlowToken(source: caller)
        let token = try #require(codec.encode(own))
        let r = ProxyFixtures.invite(extra: "Route: <sip:\(token)@192.0.2.1:5061;transport=tls;lr>",
                                     uri: "sips:alice@198.51.100.1", method: "BYE")
        let v = ProxyFixtures.validated(r)
        #expect(v.route(arrivedOn: caller, identity: ProxyFixtures.identity, codec: codec) == .forward(flow: nil))
        #expect(v.dialogTarget(flow: nil).transport == .tls)  // sips: only over TLS
    }

    @Test func lookupFailuresAnswerAsTheRedirectModeDoes() {
        let r = ProxyFixtures.invite(uri: "sips:bob@example.com")
        #expect(ProxyLookupResult.unknownUser.failureResponse(to: r)?.statusCode == 404)
        let sips = ProxyLookupResult.noSecureContacts.failureResponse(to: r)
        #expect(sips?.statusCode == 480)
        #expect(sips?.headers[.warning] == "380 example.com \"SIPS Not Allowed\"")
        #expect(ProxyLookupResult.notOurDomain.failureResponse(to: r)?.statusCode == 403)
        #expect(ProxyLookupResult.targets([]).failureResponse(to: r)?.statusCode == 480)
        #expect(ProxyLookupResult.targets([ProxyFixtures.target("sip:b@10.0.0.1")]).failureResponse(to: r) == nil)
    }
}

@Suite("SIPS never leaves over a non-TLS hop (RFC 5630)")
struct SIPSHopTests {
    @Test func sipsRequestDropsNonTLSTargets() {
        let v = ProxyFixtures.validated(ProxyFixtures.invite(uri: "sips:bob@example.com"))
        let udp = ProxyBranchTarget(target: ProxyFixtures.target("sip:bob@10.0.0.1"), via: ProxyFixtures.udpLeg)
        let tls = ProxyBranchTarget(target: ProxyFixtures.target("sips:bob@10.0.0.2", transport: .tls), via: ProxyFixtures.tlsLeg)
        var tx = ProxyTransaction(request: v, targets: TargetSet([udp, tls]))
        #expect(tx.refusedInsecure == 1)
        #expect(tx.start().forwarded == [0])
        #expect(tx.branchRequest(0)?.uri.host == "10.0.0.2")
    }

    @Test func sipsRequestWithoutATLSHopIs480With380() {
        let v = ProxyFixtures.validated(ProxyFixtures.invite(uri: "sips:bob@example.com"))
        let udp = ProxyBranchTarget(target: ProxyFixtures.target("sip:bob@10.0.0.1"), via: ProxyFixtures.udpLeg)
        var tx = ProxyTransaction(request: v, targets: TargetSet([udp]))
        let r = tx.start().upstream
        #expect(r.map(\.statusCode) == [100, 480])
        #expect(r.last?.headers[.warning] == "380 example.com \"SIPS Not Allowed\"")
    }

    @Test func sipContactOfASIPRequestMayUseTLS() {
        let v = ProxyFixtures.validated(ProxyFixtures.invite())
        let tls = ProxyBranchTarget(target: ProxyFixtures.target("sips:bob@10.0.0.2", transport: .tls), via: ProxyFixtures.tlsLeg)
        let tcpToSips = ProxyBranchTarget(target: ProxyFixtures.target("sips:bob@10.0.0.3", transport: .tcp),
                                          via: ProxyLeg(transport: .tcp, host: "192.0.2.1", port: 5060))
        var tx = ProxyTransaction(request: v, targets: TargetSet([tls, tcpToSips]))
        #expect(tx.start().forwarded == [0])
        #expect(tx.refusedInsecure == 1)
    }

    @Test func signedPlanCarriesVerifiableTokens() throws {
        let codec = FlowTokenCodec(key: [7], mac: ProxyFixtures.testMAC)
        let caller = FlowToken(flowID: nil, transport: .udp, host: "203.0.113.1", port: 5060)
        let callee = FlowToken(flowID: 5, transport: .tls, host: "203.0.113.2", port: 40000)
        let plan = try #require(RecordRoutePlan.signed(inbound: ProxyFixtures.udpLeg, caller: caller,
                                                       outbound: ProxyFixtures.tlsLeg, callee: callee, codec: codec))
        let values = plan.recordRouteValues(sips: false).compactMap { NameAddress.parse($0)?.uri.user }
        #expect(values.compactMap { codec.decode($0) } == [callee, caller])
    }
}
