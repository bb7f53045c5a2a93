import SIPMessage
import Testing
@testable import SIPProxy

/// An injected clock for transaction timers: runs the earliest timer next.
struct TimerSim {
    var now: Duration = .zero
    var pending: [TransactionTimer: Duration] = [:]
    var sent: [(Duration, SIPRequest)] = []
    var sentResponses: [(Duration, SIPResponse)] = []
    var log: [TransactionAction] = []

    mutating func apply(_ actions: [TransactionAction]) {
        log += actions
        for a in actions {
            switch a {
            case .startTimer(let t, let d): pending[t] = now + d
            case .stopTimer(let t): pending[t] = nil
            case .sendRequest(let r): sent.append((now, r))
            case .sendResponse(let r): sentResponses.append((now, r))
            default: break
            }
        }
    }

    /// The next timer to fire, with the clock moved to it.
    mutating func next() -> TransactionTimer? {
        guard let (t, at) = pending.min(by: { $0.value < $1.value }) else { return nil }
        pending[t] = nil
        now = at
        return t
    }
}

@Suite("Client and server transactions (RFC 3261 17.1, 17.2.1, RFC 6026)")
struct TransactionTests {
    let invite = ProxyFixtures.invite()
    let message = ProxyFixtures.invite(method: "MESSAGE")

    private func response(_ code: Int, to r: SIPRequest) -> SIPResponse {
        SIPResponse(to: r, statusCode: code, toTag: code > 100 ? "callee" : nil)
    }

    @Test func timerADoublesUntilTimerB() {
        var tx = InviteClientTransaction(request: invite, reliable: false)
        var sim = TimerSim()
        sim.apply(tx.start())
        while let t = sim.next() { sim.apply(tx.handle(.timerFired(t))) }
        #expect(sim.sent.map(\.0) == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5].map { Duration.milliseconds(Int($0 * 1000)) })
        #expect(sim.now == .seconds(32))
        #expect(sim.log.contains(.timedOut))
        #expect(tx.state == .terminated)
    }

    @Test func timerEIsCappedAtT2() {
        var tx = NonInviteClientTransaction(request: message, reliable: false)
        var sim = TimerSim()
        sim.apply(tx.start())
        while let t = sim.next() { sim.apply(tx.handle(.timerFired(t))) }
        let expected: [Double] = [0, 0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
        #expect(sim.sent.map(\.0) == expected.map { Duration.milliseconds(Int($0 * 1000)) })
        #expect(sim.log.last == .terminated)
        #expect(sim.log.contains(.timedOut))
    }

    @Test func timersFollowConfiguredT1AndT2() {
        let timers = ProxyTimerConfiguration(t1: .milliseconds(100), t2: .milliseconds(300))
        var tx = NonInviteClientTransaction(request: message, reliable: false, timers: timers)
        var sim = TimerSim()
        sim.apply(tx.start())
        for _ in 0..<4 { if let t = sim.next() { sim.apply(tx.handle(.timerFired(t))) } }
        #expect(sim.sent.map(\.0) == [0, 100, 300, 600, 900].map { Duration.milliseconds($0) })
    }

    @Test func provisionalMakesTimerET2() {
        var tx = NonInviteClientTransaction(request: message, reliable: false)
        var sim = TimerSim()
        sim.apply(tx.start())
        sim.apply(tx.handle(.response(response(100, to: message))))
        #expect(tx.state == .proceeding)
        if let t = sim.next() { sim.apply(tx.handle(.timerFired(t))) }  // E at 0.5 s
        #expect(sim.pending[.e] == .milliseconds(500) + .seconds(4))
    }

    @Test func reliableTransportsDoNotRetransmitOrWait() {
        var tx = NonInviteClientTransaction(request: message, reliable: true)
        let start = tx.start()
        #expect(start == [.sendRequest(message), .startTimer(.f, after: .seconds(32))])
        let done = tx.handle(.response(response(200, to: message)))
        #expect(done.contains(.deliver(response(200, to: message))))
        #expect(done.last == .terminated)

        var itx = InviteClientTransaction(request: invite, reliable: true)
        #expect(itx.start() == [.sendRequest(invite), .startTimer(.b, after: .seconds(32))])
        let busy = itx.handle(.response(response(486, to: invite)))
        #expect(busy.last == .terminated)  // Timer D is zero
    }

    @Test func nonTwoHundredIsAcknowledgedHopByHop() throws {
        var tx = InviteClientTransaction(request: invite, reliable: false)
        _ = tx.start()
        _ = tx.handle(.response(response(180, to: invite)))
        #expect(tx.state == .proceeding)
        let busy = response(486, to: invite)
        let r = tx.handle(.response(busy))
        guard case .sendRequest(let ack)? = r.first(where: { if case .sendRequest = $0 { true } else { false } }) else {
            Issue.record("no ACK"); return
        }
        #expect(ack.method == .ack)
        #expect(ack.uri == invite.uri)
        #expect(ack.headers[.cseq] == "314159 ACK")
        #expect(ack.headers[.to] == busy.headers[.to])
        #expect(ack.headers[.to]?.contains("tag=callee") == true)
        #expect(ack.headers.values(.via) == [try #require(invite.headers.values(.via).first)])
        #expect(r.contains(.deliver(busy)))
        #expect(r.contains(.startTimer(.d, after: .seconds(32))))
        // A retransmitted 486: ACK again, not passed up.
        let again = tx.handle(.response(busy))
        #expect(again == [.sendRequest(ack)])
        #expect(tx.handle(.timerFired(.d)).last == .terminated)
    }

    @Test func twoHundredsPassUpWhileAccepted() {
        var tx = InviteClientTransaction(request: invite, reliable: false)
        _ = tx.start()
        let ok = response(200, to: invite)
        let r = tx.handle(.response(ok))
        #expect(tx.state == .accepted)
        #expect(r.contains(.deliver(ok)))
        #expect(!r.contains { if case .sendRequest = $0 { true } else { false } })  // the 2xx ACK is end to end
        #expect(tx.handle(.response(ok)) == [.deliver(ok)])
        #expect(tx.handle(.timerFired(.m)).last == .terminated)
    }

    @Test func provisionalStopsTimersAAndB() {
        var tx = InviteClientTransaction(request: invite, reliable: false)
        var sim = TimerSim()
        sim.apply(tx.start())
        sim.apply(tx.handle(.response(response(100, to: invite))))
        #expect(sim.pending.isEmpty)
        #expect(tx.handle(.timerFired(.a)).isEmpty)  // late firing ignored
    }

    @Test func transportErrorEndsTheTransaction() {
        var tx = InviteClientTransaction(request: invite, reliable: true)
        _ = tx.start()
        let r = tx.handle(.transportError)
        #expect(r.first == .transportFailed)
        #expect(r.last == .terminated)
    }

    @Test func serverTransactionRetransmitsTheFinalResponseCappedAtT2() {
        var tx = InviteServerTransaction(request: invite, reliable: false)
        var sim = TimerSim()
        sim.apply(tx.start())
        #expect(sim.sentResponses.map(\.1.statusCode) == [100])
        sim.apply(tx.handle(.retransmittedRequest))
        #expect(sim.sentResponses.map(\.1.statusCode) == [100, 100])
        sim.apply(tx.handle(.send(response(180, to: invite))))
        sim.apply(tx.handle(.retransmittedRequest))
        #expect(sim.sentResponses.map(\.1.statusCode) == [100, 100, 180, 180])
        sim.apply(tx.handle(.send(response(486, to: invite))))
        let before = sim.sentResponses.count
        while let t = sim.next() { sim.apply(tx.handle(.timerFired(t))) }
        let times = sim.sentResponses.dropFirst(before).map(\.0)
        let expected: [Double] = [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
        #expect(times == expected.map { Duration.milliseconds(Int($0 * 1000)) })
        #expect(sim.log.contains(.timedOut))  // Timer H: no ACK
    }

    @Test func ackConfirmsAndTimerIEnds() {
        var tx = InviteServerTransaction(request: invite, reliable: false)
        _ = tx.start()
        _ = tx.handle(.send(response(404, to: invite)))
        let r = tx.handle(.ack)
        #expect(tx.state == .confirmed)
        #expect(r.contains(.stopTimer(.g)) && r.contains(.stopTimer(.h)))
        #expect(r.contains(.startTimer(.i, after: .seconds(5))))
        #expect(tx.handle(.retransmittedRequest).isEmpty)
        #expect(tx.handle(.timerFired(.i)).last == .terminated)
    }

    @Test func serverTwoHundredsPassThroughUntilTimerL() {
        var tx = InviteServerTransaction(request: invite, reliable: true)
        _ = tx.start()
        let ok = response(200, to: invite)
        #expect(tx.handle(.send(ok)) == [.sendResponse(ok), .startTimer(.l, after: .seconds(32))])
        #expect(tx.handle(.send(ok)) == [.sendResponse(ok)])
        #expect(tx.handle(.retransmittedRequest).isEmpty)
        #expect(tx.handle(.send(response(486, to: invite))).isEmpty)
        #expect(tx.handle(.timerFired(.l)).last == .terminated)
    }
}
