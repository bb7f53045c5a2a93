import SIPMessage
import Testing
@testable import SIPProxy

/// Drives a ``ProxyTransaction`` the way the server will.
struct ForkDriver {
    var tx: ProxyTransaction
    var log: [ProxyAction] = []

    init(method: String = "INVITE", targets: [ProxyTarget], timers: ProxyTimerConfiguration = .init()) {
        let v = ProxyFixtures.validated(ProxyFixtures.invite(method: method))
        let planned = targets.map { ProxyBranchTarget(target: $0, via: ProxyFixtures.udpLeg) }
        tx = ProxyTransaction(request: v, targets: TargetSet(planned), timers: timers)
        log = tx.start()
    }

    /// A downstream response on branch `i`, as it comes back through our Via.
    mutating func respond(_ i: Int, _ code: Int, extra: [(SIPHeaderName, String)] = []) -> [ProxyAction] {
        guard let sent = tx.branchRequest(i) else { fatalError("no branch \(i)") }
        var r = SIPResponse(to: sent, statusCode: code, toTag: code > 100 ? "tag\(i)" : nil)
        for (n, v) in extra { r.headers.add(n, v) }
        guard let own = ProxyForwarding.stripOwnVia(r, identity: ProxyFixtures.identity) else {
            fatalError("not our Via")
        }
        return send(.response(branch: own.branchIndex, own.response))
    }

    mutating func send(_ e: ProxyEvent) -> [ProxyAction] {
        let a = tx.handle(e)
        log += a
        return a
    }
}

extension [ProxyAction] {
    var upstreamCodes: [Int] {
        compactMap { if case .sendUpstream(let r) = $0 { return r.statusCode } else { return nil } }
    }
    var upstream: [SIPResponse] {
        compactMap { if case .sendUpstream(let r) = $0 { return r } else { return nil } }
    }
    var forwarded: [Int] {
        compactMap { if case .forward(let b, _, _) = $0 { return b } else { return nil } }
    }
    var cancelled: [Int] {
        compactMap { if case .cancelBranch(let b, _) = $0 { return b } else { return nil } }
    }
    var finished: ProxyCompletion? {
        for a in self { if case .finished(let c) = a { return c } }
        return nil
    }
    var startedTimers: [ProxyTimerID] {
        compactMap { if case .startTimer(let t, _) = $0 { return t } else { return nil } }
    }
}

@Suite("Forking and best response (RFC 3261 16.6, 16.7)")
struct ForkingTests {
    let a = ProxyFixtures.target("sip:bob@10.0.0.1")
    let b = ProxyFixtures.target("sip:bob@10.0.0.2", q: 1000)
    let c = ProxyFixtures.target("sip:bob@10.0.0.3", q: 500)

    @Test func targetSetGroupsByQHighestFirstAndDropsDuplicates() {
        let set = TargetSet([c, a, b, a].map { ProxyBranchTarget(target: $0, via: ProxyFixtures.udpLeg) })
        #expect(set.groups.map { $0.map(\.target.uri.host) } == [["10.0.0.1", "10.0.0.2"], ["10.0.0.3"]])
        #expect(set.count == 3)
    }

    @Test func inviteGets100AtOnceAndForksTheFirstGroup() {
        let d = ForkDriver(targets: [a, b, c])
        #expect(d.log.upstreamCodes == [100])
        #expect(d.log.forwarded == [0, 1])
        #expect(d.log.startedTimers == [.timerC(branch: 0), .timerC(branch: 1)])
        #expect(d.tx.branchRequest(1)?.uri.host == "10.0.0.2")
    }

    @Test func nextGroupWhenTheFirstFails() {
        var d = ForkDriver(targets: [a, b, c])
        #expect(d.respond(0, 486).forwarded.isEmpty)
        let next = d.respond(1, 480)
        #expect(next.forwarded == [2])
        #expect(next.upstreamCodes.isEmpty)
        let done = d.respond(2, 200)
        #expect(done.upstreamCodes == [200])
        #expect(done.finished?.statusCode == 200)
    }

    @Test func bestResponseIsLowestClassWithHintsFirst() {
        var d = ForkDriver(targets: [a, b, ProxyFixtures.target("sip:bob@10.0.0.4")])
        _ = d.respond(0, 486)
        _ = d.respond(1, 302)
        let last = d.respond(2, 404)
        #expect(last.upstreamCodes == [302])
        #expect(BestResponse.choose([ContextResponse(SIPResponse(statusCode: 404)), ContextResponse(SIPResponse(statusCode: 401))]) == 1)
        #expect(BestResponse.choose([ContextResponse(SIPResponse(statusCode: 486)), ContextResponse(SIPResponse(statusCode: 603))]) == 1)
        #expect(BestResponse.choose([ContextResponse(SIPResponse(statusCode: 408), generated: true),
                                     ContextResponse(SIPResponse(statusCode: 480))]) == 1)
        #expect(BestResponse.choose([]) == nil)
    }

    @Test func provisionalRelayedExcept100() {
        var d = ForkDriver(targets: [a])
        #expect(d.respond(0, 100).upstreamCodes.isEmpty)
        #expect(d.respond(0, 180).upstreamCodes == [180])
        #expect(d.respond(0, 183).upstreamCodes == [183])
    }

    @Test func everyTwoHundredOfAnInviteIsRelayed() {
        var d = ForkDriver(targets: [a, b])
        _ = d.respond(0, 180)
        _ = d.respond(1, 180)
        let first = d.respond(0, 200)
        #expect(first.upstreamCodes == [200])
        #expect(first.cancelled == [1])
        let second = d.respond(1, 200)
        #expect(second.upstreamCodes == [200])
        #expect(second.finished?.statusCode == 200)
        // A retransmitted 2xx on an ended branch still goes up.
        #expect(d.respond(0, 200).upstreamCodes == [200])
    }

    @Test func sixHundredCancelsTheOthersAndWins() {
        var d = ForkDriver(targets: [a, b, c])
        _ = d.respond(0, 180)
        let decline = d.respond(1, 603)
        #expect(decline.upstreamCodes.isEmpty)
        #expect(decline.cancelled == [0])
        let end = d.respond(0, 487)
        #expect(end.upstreamCodes == [603])
        #expect(end.forwarded.isEmpty)  // no next group after a 6xx
        #expect(end.finished?.statusCode == 603)
    }

    @Test func fiveOhThreeIsForwardedAs500() {
        var d = ForkDriver(targets: [a])
        let r = d.respond(0, 503, extra: [(.retryAfter, "30")])
        #expect(r.upstreamCodes == [500])
        #expect(r.upstream.first?.reasonPhrase == "Server Internal Error")
    }

    @Test func challengesAreMerged() {
        var d = ForkDriver(targets: [a, b])
        _ = d.respond(0, 401, extra: [(.wwwAuthenticate, "Digest realm=\"a\", nonce=\"1\"")])
        let r = d.respond(1, 407, extra: [(.proxyAuthenticate, "Digest realm=\"b\", nonce=\"2\"")])
        let up = r.upstream.first
        #expect(up?.statusCode == 401)
        #expect(up?.headers.values(.wwwAuthenticate) == ["Digest realm=\"a\", nonce=\"1\""])
        #expect(up?.headers.values(.proxyAuthenticate) == ["Digest realm=\"b\", nonce=\"2\""])
    }

    @Test func cancelIsBuiltPer9_1() throws {
        var d = ForkDriver(targets: [a, b])
        _ = d.respond(0, 180)
        let actions = d.respond(1, 200)
        guard case .cancelBranch(0, let cancel)? = actions.first(where: { if case .cancelBranch = $0 { true } else { false } }),
              let invite = d.tx.branchRequest(0) else { Issue.record("no CANCEL"); return }
        #expect(cancel.method == .cancel)
        #expect(cancel.uri == invite.uri)
        #expect(cancel.headers.values(.via) == [try #require(invite.headers.values(.via).first)])
        #expect(cancel.headers[.cseq] == "314159 CANCEL")
        #expect(cancel.headers[.callID] == invite.headers[.callID])
        #expect(cancel.headers[.to] == invite.headers[.to])
        #expect(cancel.headers[.from] == invite.headers[.from])
        #expect(cancel.headers[.maxForwards] == "70")
    }
}
