import SIPMessage
import Testing
@testable import SIPProxy

/// Drives a ``StatefulProxyTransaction`` with an injected clock.
struct CoreDriver {
    var core: StatefulProxyTransaction
    var now: Duration = .zero
    var pending: [ProxyCoreTimer: Duration] = [:]
    var log: [ProxyCoreAction] = []

    init(method: String = "INVITE", inbound: SIPTransportProtocol = .udp, targets: [(ProxyTarget, ProxyLeg)]) {
        let v = ProxyFixtures.validated(ProxyFixtures.invite(method: method))
        let set = TargetSet(targets.map { ProxyBranchTarget(target: $0.0, via: $0.1) })
        core = StatefulProxyTransaction(request: v, targets: set, inbound: inbound)
        apply(core.start())
    }

    mutating func apply(_ actions: [ProxyCoreAction]) {
        log += actions
        for a in actions {
            switch a {
            case .startTimer(let t, let d): pending[t] = now + d
            case .stopTimer(let t): pending[t] = nil
            default: break
            }
        }
    }

    @discardableResult
    mutating func send(_ e: ProxyCoreEvent) -> [ProxyCoreAction] {
        let a = core.handle(e)
        apply(a)
        return a
    }

    /// A response from downstream to the last request sent on branch `i` with that method.
    @discardableResult
    mutating func respond(_ i: Int, _ code: Int, method: SIPMethod = .invite) -> [ProxyCoreAction] {
        guard let sent = downstream(i).last(where: { $0.method == method }) else { fatalError("nothing sent on \(i)") }
        let r = SIPResponse(to: sent, statusCode: code, toTag: code > 100 ? "t\(i)" : nil)
        guard let own = ProxyForwarding.stripOwnVia(r, identity: ProxyFixtures.identity) else {
            fatalError("not our Via")
        }
        return send(.response(branch: own.branchIndex, own.response))
    }

    /// Runs timers until none is left (or `limit` firings), returning what they caused.
    @discardableResult
    mutating func runTimers(until limit: Duration = .seconds(3600)) -> [ProxyCoreAction] {
        var all: [ProxyCoreAction] = []
        while let (t, at) = pending.min(by: { $0.value < $1.value }), at <= limit {
            pending[t] = nil
            now = at
            all += send(.timerFired(t))
        }
        return all
    }

    func downstream(_ i: Int) -> [SIPRequest] {
        log.compactMap { if case .sendDownstream(i, let r, _) = $0 { return r } else { return nil } }
    }

    var upstreamCodes: [Int] {
        log.compactMap { if case .sendUpstream(let r) = $0 { return r.statusCode } else { return nil } }
    }
}

@Suite("A whole proxied call: response context and transactions together")
struct StatefulProxyTests {
    let tlsBob = ProxyFixtures.target("sip:bob@10.0.0.1;transport=tls", transport: .tls, flowID: 4)
    let udpBob = ProxyFixtures.target("sip:bob@10.0.0.2")

    @Test func callAnsweredOnOneBranchCancelsTheOther() {
        var d = CoreDriver(targets: [(tlsBob, ProxyFixtures.tlsLeg), (udpBob, ProxyFixtures.udpLeg)])
        #expect(d.upstreamCodes == [100])
        #expect(d.downstream(0).map(\.method) == [.invite])
        #expect(d.pending[.branch(0, .a)] == nil)  // TLS: no retransmission
        #expect(d.pending[.branch(1, .a)] == .milliseconds(500))
        #expect(d.pending[.proxy(.timerC(branch: 0))] == .seconds(181))

        d.respond(0, 180)
        d.respond(0, 200)
        #expect(d.upstreamCodes == [100, 180, 200])
        #expect(d.downstream(1).map(\.method) == [.invite])  // no CANCEL before a provisional (9.1)
        d.respond(1, 100)
        #expect(d.downstream(1).map(\.method) == [.invite, .cancel])
        d.respond(1, 200, method: .cancel)
        d.respond(1, 487)
        // The 487 is acknowledged hop by hop and not relayed.
        #expect(d.downstream(1).map(\.method) == [.invite, .cancel, .ack])
        #expect(d.upstreamCodes == [100, 180, 200])
        #expect(d.log.contains(.finished(ProxyCompletion(statusCode: 200, reason: "answered"))))
        #expect(!d.core.isTerminated)  // Timers D, K, M and L still run
        d.runTimers()
        #expect(d.core.isTerminated)
        #expect(d.log.last == .terminated)
    }

    @Test func udpBranchIsRetransmittedUntilItAnswers() {
        var d = CoreDriver(targets: [(udpBob, ProxyFixtures.udpLeg)])
        d.runTimers(until: .milliseconds(1500))
        #expect(d.downstream(0).count == 3)  // 0, 0.5, 1.5 s
        d.respond(0, 180)
        d.runTimers(until: .seconds(60))
        #expect(d.downstream(0).count == 3)
        #expect(d.upstreamCodes == [100, 180])
    }

    @Test func unansweredBranchTimesOutAs408() {
        var d = CoreDriver(targets: [(udpBob, ProxyFixtures.udpLeg)])
        d.runTimers(until: .seconds(32))
        #expect(d.upstreamCodes == [100, 408])
        #expect(d.log.contains(.branchEnded(branch: 0, .timedOut)))
    }

    @Test func failureGoesUpAndIsRetransmittedToAUDPCallerUntilACK() {
        var d = CoreDriver(targets: [(tlsBob, ProxyFixtures.tlsLeg)])
        d.respond(0, 486)
        #expect(d.upstreamCodes == [100, 486])
        #expect(d.downstream(0).map(\.method) == [.invite, .ack])
        d.runTimers(until: .milliseconds(1500))
        #expect(d.upstreamCodes == [100, 486, 486, 486])  // Timer G
        d.send(.ack)
        d.runTimers()
        #expect(d.upstreamCodes.count == 4)
        #expect(d.core.isTerminated)
    }

    @Test func retransmittedInviteGetsTheLastProvisional() {
        var d = CoreDriver(targets: [(tlsBob, ProxyFixtures.tlsLeg)])
        d.send(.retransmittedRequest)
        d.respond(0, 180)
        d.send(.retransmittedRequest)
        #expect(d.upstreamCodes == [100, 100, 180, 180])
    }

    @Test func callerCancelEndsWith487() {
        var d = CoreDriver(inbound: .tls, targets: [(tlsBob, ProxyFixtures.tlsLeg)])
        d.respond(0, 180)
        let r = d.send(.cancel(ProxyFixtures.invite(method: "CANCEL")))
        #expect(r.contains { if case .answerCancel(let ok) = $0 { ok.statusCode == 200 } else { false } })
        #expect(d.downstream(0).map(\.method) == [.invite, .cancel])
        d.respond(0, 200, method: .cancel)
        d.respond(0, 487)
        #expect(d.upstreamCodes == [100, 180, 487])
        d.send(.ack)
        #expect(d.core.isTerminated)  // everything reliable: nothing to wait for
    }

    @Test func lostFlowAbandonsTheBranch() {
        var d = CoreDriver(inbound: .tls, targets: [(tlsBob, ProxyFixtures.tlsLeg)])
        let r = d.send(.flowFailed(branch: 0))
        #expect(r.contains(.stopTimer(.branch(0, .b))))
        #expect(d.upstreamCodes == [100, 480])
    }

    @Test func nonInviteForkEndsAfterTimerK() {
        var d = CoreDriver(method: "MESSAGE", targets: [(udpBob, ProxyFixtures.udpLeg)])
        #expect(d.upstreamCodes.isEmpty)
        d.respond(0, 200, method: "MESSAGE")
        #expect(d.upstreamCodes == [200])
        #expect(!d.core.isTerminated)
        d.runTimers()
        #expect(d.core.isTerminated)
    }

    @Test func lateTwoHundredAfterTheClientTransactionEndedStillGoesUp() {
        var d = CoreDriver(inbound: .tls, targets: [(tlsBob, ProxyFixtures.tlsLeg), (udpBob, ProxyFixtures.udpLeg)])
        d.respond(0, 200)
        d.runTimers(until: .seconds(33))  // Timer M ends branch 0's transaction
        d.respond(0, 200)
        #expect(d.core.isTerminated)
        #expect(d.upstreamCodes == [100, 200, 200])
    }
}
