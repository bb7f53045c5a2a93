import SIPMessage
import Testing
@testable import SIPProxy

@Suite("CANCEL, Timer C and failed hops (RFC 3261 16.8-16.10, 9.1, RFC 5626)")
struct CancelAndTimerCTests {
    let a = ProxyFixtures.target("sip:bob@10.0.0.1")
    let b = ProxyFixtures.target("sip:bob@10.0.0.2")
    let callerCancel = ProxyFixtures.invite(method: "CANCEL")

    @Test func callerCancelIsAnswered200AndCancelsEveryBranch() {
        var d = ForkDriver(targets: [a, b])
        _ = d.respond(0, 180)
        let r = d.send(.cancel(callerCancel))
        guard case .answerCancel(let ok)? = r.first else { Issue.record("no 200"); return }
        #expect(ok.statusCode == 200)
        #expect(ok.headers[.cseq] == "314159 CANCEL")
        // Branch 0 rang: cancelled now. Branch 1 had nothing: cancelled when its 1xx comes (9.1).
        #expect(r.cancelled == [0])
        #expect(d.respond(1, 100).cancelled == [1])
        _ = d.respond(0, 487)
        let end = d.respond(1, 487)
        #expect(end.upstreamCodes == [487])
        #expect(end.finished?.statusCode == 487)
        #expect(end.finished?.reason.hasPrefix("cancelled by the caller") == true)
    }

    @Test func callerCancelGets487EvenWhenBranchesJustTimeOut() {
        var d = ForkDriver(targets: [a, ProxyFixtures.target("sip:bob@10.0.0.3", q: 100)])
        let r = d.send(.cancel(callerCancel))
        #expect(r.cancelled.isEmpty)  // nothing to cancel yet
        // Timer B of the branch that never answered; no next group after a CANCEL.
        let end = d.send(.timeout(branch: 0))
        #expect(end.forwarded.isEmpty)
        #expect(end.upstreamCodes == [487])
        #expect(end.upstream.first?.headers[.cseq] == "314159 INVITE")
        // RFC 3261 9.2: the 200 to the CANCEL and the 487 to the INVITE carry the same To tag.
        guard case .answerCancel(let ok)? = r.first else { Issue.record("no 200"); return }
        let cancelTag = (try? ok.headers.to)??.tag
        #expect(cancelTag != nil)
        #expect(cancelTag == (try? end.upstream.first?.headers.to)??.tag)
    }

    @Test func callerCancelPrefers487OverOtherFailures() {
        var d = ForkDriver(targets: [a, b])
        _ = d.respond(0, 486)
        _ = d.respond(1, 180)
        _ = d.send(.cancel(callerCancel))
        #expect(d.respond(1, 487).upstreamCodes == [487])
    }

    @Test func cancelAfterTheFinalResponseIsJustAnswered() {
        var d = ForkDriver(targets: [a])
        _ = d.respond(0, 200)
        let r = d.send(.cancel(callerCancel))
        #expect(r.count == 1)
        if case .answerCancel(let ok)? = r.first { #expect(ok.statusCode == 200) } else { Issue.record("not answered") }
    }

    @Test func timerCRestartsOnProvisionals() {
        var d = ForkDriver(targets: [a], timers: ProxyTimerConfiguration(timerC: .seconds(200)))
        #expect(d.log.contains(.startTimer(.timerC(branch: 0), after: .seconds(200))))
        #expect(d.respond(0, 100).startedTimers.isEmpty)
        #expect(d.respond(0, 180).startedTimers == [.timerC(branch: 0)])
        #expect(ProxyTimerConfiguration().timerC > .seconds(180))
    }

    @Test func timerCWithAProvisionalCancelsTheBranch() {
        var d = ForkDriver(targets: [a])
        _ = d.respond(0, 180)
        let r = d.send(.timerFired(.timerC(branch: 0)))
        #expect(r.cancelled == [0])
        #expect(r.startedTimers == [.cancelWait(branch: 0)])
        #expect(d.respond(0, 487).upstreamCodes == [487])
    }

    @Test func timerCWithoutAProvisionalIs408() {
        var d = ForkDriver(targets: [a, b])
        _ = d.respond(1, 486)
        let r = d.send(.timerFired(.timerC(branch: 0)))
        #expect(r.contains(.abandonBranch(branch: 0)))
        #expect(r.contains(.branchEnded(branch: 0, .timedOut)))
        #expect(r.upstreamCodes == [486])  // 486 beats the generated 408
    }

    @Test func noAnswerToOurCancelEndsTheBranch() {
        var d = ForkDriver(targets: [a])
        _ = d.respond(0, 180)
        _ = d.send(.timerFired(.timerC(branch: 0)))
        let r = d.send(.timerFired(.cancelWait(branch: 0)))
        #expect(r.contains(.abandonBranch(branch: 0)))
        #expect(r.upstreamCodes == [408])
        #expect(r.finished?.statusCode == 408)
    }

    @Test func staleTimersAreIgnored() {
        var d = ForkDriver(targets: [a])
        _ = d.respond(0, 486)
        #expect(d.send(.timerFired(.timerC(branch: 0))).isEmpty)
        #expect(d.send(.timerFired(.cancelWait(branch: 7))).isEmpty)
    }

    @Test func lostOutboundFlowIs430AndTheNextTargetIsTried() {
        let outbound = ProxyFixtures.target("sip:bob@10.0.0.1;transport=tcp", transport: .tcp, flowID: 9,
                                            instance: "<urn:uuid:1>", regID: 1)
        var d = ForkDriver(targets: [outbound, ProxyFixtures.target("sip:bob@10.0.0.2", q: 500)])
        let r = d.send(.flowFailed(branch: 0))
        #expect(r.contains(.branchEnded(branch: 0, .flowFailed(statusCode: 430))))
        #expect(r.forwarded == [1])
        #expect(d.send(.flowFailed(branch: 1)).upstreamCodes == [430])
    }

    @Test func lostPlainFlowIs480() {
        var d = ForkDriver(targets: [ProxyFixtures.target("sip:bob@10.0.0.1", transport: .tcp, flowID: 3)])
        #expect(d.send(.flowFailed(branch: 0)).upstreamCodes == [480])
    }

    @Test func transportErrorActsAs503AndGoesUpAs500() {
        var d = ForkDriver(targets: [a])
        let r = d.send(.transportError(branch: 0))
        #expect(r.contains(.branchEnded(branch: 0, .transportError)))
        #expect(r.upstreamCodes == [500])
    }

    @Test func noTargetsIs480() {
        let d = ForkDriver(targets: [])
        #expect(d.log.upstreamCodes == [100, 480])
        #expect(d.log.finished?.statusCode == 480)
    }

    @Test func nonInviteForksWithoutTimerCOr100AndNeverCancels() {
        var d = ForkDriver(method: "MESSAGE", targets: [a, b])
        #expect(d.log.upstreamCodes.isEmpty)
        #expect(d.log.startedTimers.isEmpty)
        let first = d.respond(0, 200)
        #expect(first.upstreamCodes == [200])
        #expect(first.cancelled.isEmpty)
        let second = d.respond(1, 202)
        #expect(second.upstreamCodes.isEmpty)  // only the first 2xx of a non-INVITE
        #expect(second.finished?.statusCode == 200)
        #expect(d.send(.cancel(ProxyFixtures.invite(method: "CANCEL"))).cancelled.isEmpty)
    }

    @Test func finishedOnceWithAReason() {
        var d = ForkDriver(targets: [a, b])
        _ = d.respond(0, 486)
        let r = d.send(.timeout(branch: 1))
        #expect(r.finished == ProxyCompletion(statusCode: 486, reason: "branches: 486, 408 (timeout)"))
        #expect(d.tx.isFinished)
        #expect(d.respond(1, 200).finished == nil)
    }
}
