import SIPMessage

/// Timer values (RFC 3261 17.1.1.1, 16.6 step 11, table 4).
public struct ProxyTimerConfiguration: Sendable, Hashable {
    /// RTT estimate, 500 ms by default.
    public var t1: Duration
    /// Cap of the non-INVITE and INVITE-response retransmission interval, 4 s by default.
    public var t2: Duration
    /// How long a message stays in the network, 5 s by default.
    public var t4: Duration
    /// Timer C of a proxied INVITE branch. RFC 3261 16.6 step 11: it MUST be greater than
    /// 3 minutes, hence 181 s by default.
    public var timerC: Duration

    /// Builds a configuration.
    public init(t1: Duration = .milliseconds(500), t2: Duration = .seconds(4), t4: Duration = .seconds(5),
                timerC: Duration = .seconds(181)) {
        self.t1 = t1
        self.t2 = t2
        self.t4 = t4
        self.timerC = timerC
    }

    /// 64·T1: Timers B, F, H and J, and the wait for a final response after a CANCEL (9.1).
    public var transactionTimeout: Duration { t1 * 64 }
}

/// A timer of the proxy's response context.
public enum ProxyTimerID: Sendable, Hashable {
    /// Timer C of an INVITE branch (16.6 step 11, 16.8).
    case timerC(branch: Int)
    /// 64·T1 after we cancelled a branch: no final response by then, and the branch is
    /// considered cancelled (RFC 3261 9.1).
    case cancelWait(branch: Int)
}

/// How one branch ended, for metrics (issue 13 "branches by outcome").
public enum BranchOutcome: Sendable, Hashable {
    /// A final response arrived from downstream.
    case answered(statusCode: Int)
    /// No final response in time (Timer B/F, Timer C without a provisional, or no answer to our CANCEL): 408.
    case timedOut
    /// The transport could not send the request (16.9): 503.
    case transportError
    /// The target's flow was gone: 430 for an outbound contact, else 480.
    case flowFailed(statusCode: Int)
}

/// How the whole transaction ended, for metrics and the one log line per failed call set-up.
public struct ProxyCompletion: Sendable, Hashable {
    /// The final status code sent upstream (the first 2xx when there were several).
    public var statusCode: Int
    /// Why, in words, for the log: "answered", "cancelled by the caller", "best of 3 branches"...
    public var reason: String

    /// Builds a completion.
    public init(statusCode: Int, reason: String) {
        self.statusCode = statusCode
        self.reason = reason
    }
}

/// What the host must do for the proxy.
public enum ProxyAction: Sendable, Hashable {
    /// Send this response to the caller on the server transaction.
    case sendUpstream(SIPResponse)
    /// Answer the caller's CANCEL with this 200 (RFC 3261 16.10).
    case answerCancel(SIPResponse)
    /// Start a client transaction for branch `branch` with this request, towards this target.
    case forward(branch: Int, request: SIPRequest, to: ProxyBranchTarget)
    /// Send this CANCEL (a non-INVITE client transaction of its own) on the hop of `branch`.
    case cancelBranch(branch: Int, request: SIPRequest)
    /// Stop the client transaction of `branch` without waiting further (16.8, 9.1).
    case abandonBranch(branch: Int)
    /// Start (or restart) a timer.
    case startTimer(ProxyTimerID, after: Duration)
    /// Stop a timer; firing it afterwards is ignored anyway.
    case stopTimer(ProxyTimerID)
    /// A branch ended (observability).
    case branchEnded(branch: Int, BranchOutcome)
    /// The response context is done: every branch ended and the final response was sent.
    case finished(ProxyCompletion)
}

/// What happens to the proxy.
public enum ProxyEvent: Sendable, Hashable {
    /// A response on branch `branch`, our Via removed (``ProxyForwarding/stripOwnVia(_:identity:)``).
    case response(branch: Int, SIPResponse)
    /// The branch's client transaction timed out (Timer B or F).
    case timeout(branch: Int)
    /// The transport could not send the branch's request (16.9).
    case transportError(branch: Int)
    /// The flow the branch's target is reached through is gone (RFC 5626 5.3).
    case flowFailed(branch: Int)
    /// The caller's CANCEL, matched to this transaction by the host (RFC 3261 9.2).
    case cancel(SIPRequest)
    /// A timer started by ``ProxyAction/startTimer(_:after:)`` fired.
    case timerFired(ProxyTimerID)
}

/// The response context of one proxied request (RFC 3261 16.2, 16.5-16.10): forking over
/// q groups, best-response selection, CANCEL and Timer C. A pure state machine: the host
/// feeds events and carries out the actions; time exists only through timers it runs.
public struct ProxyTransaction: Sendable {
    enum BranchState: Sendable, Hashable {
        /// Sent, nothing heard yet.
        case trying
        /// A provisional response arrived: the branch may now be cancelled (9.1).
        case proceeding
        /// Ended.
        case completed
    }

    struct Branch: Sendable, Hashable {
        var target: ProxyBranchTarget
        var request: SIPRequest
        var state: BranchState = .trying
        /// We want to cancel it but it has had no provisional yet (9.1).
        var cancelPending = false
        var cancelSent = false
    }

    /// The request as validated, with the Vias it arrived with: responses upstream are built from it.
    public let request: ValidatedRequest
    let timers: ProxyTimerConfiguration
    let server: String?
    var groups: [[ProxyBranchTarget]]
    var nextGroup = 0
    var branches: [Branch] = []
    var context: [ContextResponse] = []
    var armed: Set<ProxyTimerID> = []
    /// A final response went upstream (or, for INVITE, a 2xx did).
    public internal(set) var finalSent: Bool = false
    var firstFinal: Int?
    /// No new branches: after a 6xx, a 2xx, or the caller's CANCEL (16.7 step 5, 16.10).
    var noNewBranches = false
    /// The caller cancelled (16.10).
    public internal(set) var cancelledByCaller = false
    /// Every branch ended and the final response was sent.
    public internal(set) var isFinished = false

    var isInvite: Bool { request.request.method == .invite }

    /// A response context for `request` forked to `targets`.
    public init(request: ValidatedRequest, targets: TargetSet, timers: ProxyTimerConfiguration = .init(),
                server: String? = nil) {
        self.request = request
        // RFC 5630 3.1.3 / RFC 3261 26.2: a SIPS request, or any request to a SIPS contact,
        // leaves only over TLS (or secure WebSocket, RFC 7118 5.2), whatever the hop selection said. A safety net: the server's
        // leg selection should not have offered such a target in the first place.
        let sips = request.receivedURI.isSIPS || request.request.uri.isSIPS
        func allowed(_ t: ProxyBranchTarget) -> Bool {
            !(sips || t.target.uri.isSIPS) || (t.via.transport.isSecure && t.target.transport.isSecure)
        }
        self.groups = targets.groups.map { $0.filter(allowed) }.filter { !$0.isEmpty }
        self.refusedInsecure = targets.count - groups.reduce(0) { $0 + $1.count }
        self.timers = timers
        self.server = server
    }

    /// Targets dropped because they would have taken a SIPS request over a non-TLS hop.
    public let refusedInsecure: Int

    /// The To tag of every response this proxy generates for the request, and of its 200 to
    /// the caller's CANCEL: RFC 3261 9.2 wants that 200 and the INVITE's response (the 487 we
    /// make when the branches end) to carry the same one.
    let localTag = SIPResponse.randomTag()

    /// The first actions: `100 Trying` for an INVITE at once (RFC 3261 16.2, 17.2.1), then
    /// the branches of the highest q group. Without targets: `480` and done.
    public mutating func start() -> [ProxyAction] {
        var out: [ProxyAction] = []
        if isInvite { out.append(.sendUpstream(SIPResponse(to: request.request, statusCode: 100, server: server))) }
        if groups.isEmpty {
            var r = generated(480)
            if refusedInsecure > 0 {
                // As the registrar's redirect mode answers (RFC 5630 3.1.3).
                r.headers.add(.warning, SIPWarning(code: 380, agent: request.request.uri.hostName,
                                                   text: "SIPS Not Allowed").description)
            }
            sendFinal(r, reason: refusedInsecure > 0 ? "no TLS hop for a SIPS request" : "no targets", into: &out)
            finishIfDone(into: &out)
            return out
        }
        openNextGroup(into: &out)
        return out
    }

    /// Feeds one event.
    public mutating func handle(_ event: ProxyEvent) -> [ProxyAction] {
        var out: [ProxyAction] = []
        switch event {
        case .response(let i, let r): onResponse(i, r, into: &out)
        case .timeout(let i): endGenerated(i, code: 408, outcome: .timedOut, into: &out)
        case .transportError(let i): endGenerated(i, code: 503, outcome: .transportError, into: &out)
        case .flowFailed(let i):
            guard branches.indices.contains(i) else { break }
            let code = branches[i].target.target.isOutbound ? 430 : 480
            endGenerated(i, code: code, outcome: .flowFailed(statusCode: code), into: &out)
        case .cancel(let c): onCallerCancel(c, into: &out)
        case .timerFired(let t):
            guard armed.remove(t) != nil else { break }  // stale: stopped or restarted since
            onTimer(t, into: &out)
        }
        finishIfDone(into: &out)
        return out
    }

    /// The number of branches created so far.
    public var branchCount: Int { branches.count }
    /// The request sent on a branch.
    public func branchRequest(_ i: Int) -> SIPRequest? { branches.indices.contains(i) ? branches[i].request : nil }
    /// Whether a branch has not ended yet.
    public func isPending(_ i: Int) -> Bool { branches.indices.contains(i) && branches[i].state != .completed }

    // MARK: Helpers shared with the event handlers

    /// A response this proxy makes itself to the request, with its ``localTag``.
    func generated(_ code: Int) -> SIPResponse {
        SIPResponse(to: request.request, statusCode: code, toTag: localTag, server: server)
    }

    mutating func openNextGroup(into out: inout [ProxyAction]) {
        guard nextGroup < groups.count else { return }
        for t in groups[nextGroup] {
            let index = branches.count
            let r = ProxyForwarding.branchRequest(request, target: t.target, index: index, via: t.via,
                                                  recordRoute: t.recordRoute)
            branches.append(Branch(target: t, request: r))
            out.append(.forward(branch: index, request: r, to: t))
            // 16.6 step 11: Timer C for each INVITE branch.
            if isInvite { start(.timerC(branch: index), after: timers.timerC, into: &out) }
        }
        nextGroup += 1
    }

    mutating func start(_ t: ProxyTimerID, after d: Duration, into out: inout [ProxyAction]) {
        armed.insert(t)
        out.append(.startTimer(t, after: d))
    }

    mutating func stop(_ t: ProxyTimerID, into out: inout [ProxyAction]) {
        if armed.remove(t) != nil { out.append(.stopTimer(t)) }
    }

    mutating func sendFinal(_ r: SIPResponse, reason: String, into out: inout [ProxyAction]) {
        finalSent = true
        firstFinal = firstFinal ?? r.statusCode
        completionReason = completionReason ?? reason
        out.append(.sendUpstream(r))
    }

    var completionReason: String?
    /// One entry per ended branch, for the completion reason.
    var outcomes: [String] = []

    mutating func finishIfDone(into out: inout [ProxyAction]) {
        guard !isFinished, finalSent, branches.allSatisfy({ $0.state == .completed }) else { return }
        isFinished = true
        for t in armed.sorted(by: { "\($0)" < "\($1)" }) { out.append(.stopTimer(t)) }
        armed.removeAll()
        out.append(.finished(ProxyCompletion(statusCode: firstFinal ?? 500, reason: completionReason ?? "done")))
    }
}
