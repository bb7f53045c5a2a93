import SIPMessage

extension ProxyTransaction {
    /// RFC 3261 16.7: a response on a branch.
    mutating func onResponse(_ i: Int, _ r: SIPResponse, into out: inout [ProxyAction]) {
        guard branches.indices.contains(i) else { return }
        let code = r.statusCode
        guard branches[i].state != .completed else {
            // Another 2xx for the INVITE on an ended branch (a retransmission, or a forking
            // element downstream): every 2xx to an INVITE is relayed (16.7 step 5).
            if isInvite, code / 100 == 2 { out.append(.sendUpstream(r)) }
            return
        }
        if code < 200 {
            branches[i].state = .proceeding
            // 16.7 step 2: Timer C restarts on every provisional other than 100.
            if isInvite, code > 100 { start(.timerC(branch: i), after: timers.timerC, into: &out) }
            // 9.1: a CANCEL waiting for a provisional response goes now.
            if branches[i].cancelPending { sendCancel(i, into: &out) }
            // 16.7 step 5: provisional responses other than 100 are relayed until the final one.
            if code > 100, !finalSent { out.append(.sendUpstream(r)) }
            return
        }
        complete(i, into: &out)
        out.append(.branchEnded(branch: i, .answered(statusCode: code)))
        outcomes.append(String(code))
        if code / 100 == 2 {
            // 16.7 step 5: a 2xx goes up at once; for an INVITE every 2xx does.
            if !finalSent {
                sendFinal(r, reason: "answered", into: &out)
            } else if isInvite {
                out.append(.sendUpstream(r))
            }
            noNewBranches = true
            // 16.7 step 10: a final response went up, so every pending branch is cancelled.
            cancelPendingBranches(into: &out)
            return
        }
        context.append(ContextResponse(r))
        if code >= 600 {
            // 16.7 step 5: a 6xx is held until the others end, which we hasten with CANCELs.
            noNewBranches = true
            cancelPendingBranches(into: &out)
        }
        conclude(into: &out)
    }

    /// A branch that ends without a response from downstream behaves as if it got `code`
    /// (16.8 and 16.9). `abandon` when its client transaction is still running.
    mutating func endGenerated(_ i: Int, code: Int, outcome: BranchOutcome, abandon: Bool = false,
                               into out: inout [ProxyAction]) {
        guard isPending(i) else { return }
        complete(i, into: &out)
        if abandon { out.append(.abandonBranch(branch: i)) }
        out.append(.branchEnded(branch: i, outcome))
        outcomes.append("\(code) (\(Self.describe(outcome)))")
        context.append(ContextResponse(generated(code), generated: true))
        conclude(into: &out)
    }

    /// RFC 3261 16.10: the caller's CANCEL is answered 200 at once (with our To tag, 9.2); if no final response
    /// went up yet, every branch is cancelled and no new branch is made. The 487 for the
    /// INVITE comes when the branches have ended.
    mutating func onCallerCancel(_ cancel: SIPRequest, into out: inout [ProxyAction]) {
        out.append(.answerCancel(SIPResponse(to: cancel, statusCode: 200, toTag: localTag, server: server)))
        guard isInvite, !finalSent, !cancelledByCaller else { return }
        cancelledByCaller = true
        noNewBranches = true
        cancelPendingBranches(into: &out)
    }

    mutating func onTimer(_ t: ProxyTimerID, into out: inout [ProxyAction]) {
        switch t {
        case .timerC(let i):
            guard isPending(i) else { return }
            // 16.8: with a provisional, CANCEL the branch; without one, act as if 408.
            if branches[i].state == .proceeding {
                if !branches[i].cancelSent { sendCancel(i, into: &out) }
            } else {
                endGenerated(i, code: 408, outcome: .timedOut, abandon: true, into: &out)
            }
        case .cancelWait(let i):
            // 9.1: no final response 64·T1 after our CANCEL: the branch is considered cancelled.
            endGenerated(i, code: 408, outcome: .timedOut, abandon: true, into: &out)
        }
    }

    mutating func complete(_ i: Int, into out: inout [ProxyAction]) {
        branches[i].state = .completed
        stop(.timerC(branch: i), into: &out)
        stop(.cancelWait(branch: i), into: &out)
    }

    /// Cancels every INVITE branch still pending. A branch without a provisional response
    /// is cancelled when one arrives (9.1); if none does, its Timer B ends it.
    mutating func cancelPendingBranches(into out: inout [ProxyAction]) {
        guard isInvite else { return }  // 9.1: non-INVITE requests are not cancelled
        for i in branches.indices where branches[i].state != .completed && !branches[i].cancelSent {
            if branches[i].state == .proceeding {
                sendCancel(i, into: &out)
            } else {
                branches[i].cancelPending = true
            }
        }
    }

    mutating func sendCancel(_ i: Int, into out: inout [ProxyAction]) {
        guard !branches[i].cancelSent else { return }
        branches[i].cancelSent = true
        branches[i].cancelPending = false
        out.append(.cancelBranch(branch: i, request: HopByHopRequests.cancel(for: branches[i].request)))
        start(.cancelWait(branch: i), after: timers.transactionTimeout, into: &out)
    }

    /// When every branch of the current group has ended without a 2xx: the next q group
    /// (16.6), or the best response upstream (16.7 step 6).
    mutating func conclude(into out: inout [ProxyAction]) {
        guard !finalSent, branches.allSatisfy({ $0.state == .completed }) else { return }
        if !noNewBranches, nextGroup < groups.count {
            openNextGroup(into: &out)
            return
        }
        let summary = "branches: " + outcomes.joined(separator: ", ")
        if cancelledByCaller, !context.contains(where: { $0.response.statusCode >= 600 }) {
            // 16.10: the caller gets 487, a branch's own if there is one.
            let r = context.first { $0.response.statusCode == 487 && !$0.generated }?.response ?? generated(487)
            sendFinal(r, reason: "cancelled by the caller; " + summary, into: &out)
            return
        }
        guard let best = BestResponse.choose(context) else {
            sendFinal(generated(408), reason: "no final response", into: &out)  // 16.7 step 6
            return
        }
        sendFinal(BestResponse.forwardable(context, chosen: best), reason: summary, into: &out)
    }

    static func describe(_ o: BranchOutcome) -> String {
        switch o {
        case .answered(let c): return "answered \(c)"
        case .timedOut: return "timeout"
        case .transportError: return "transport error"
        case .flowFailed: return "flow gone"
        }
    }
}
