import SIPMessage

/// A timer of a ``StatefulProxyTransaction``: one of the response context's or one of a
/// transaction's, named by its owner.
public enum ProxyCoreTimer: Sendable, Hashable {
    /// Timer C or the wait after our CANCEL.
    case proxy(ProxyTimerID)
    /// A timer of branch `n`'s client transaction.
    case branch(Int, TransactionTimer)
    /// A timer of the client transaction of the CANCEL we sent on branch `n`.
    case cancel(Int, TransactionTimer)
    /// A timer of the INVITE server transaction towards the caller.
    case server(TransactionTimer)
}

/// What the host does for a ``StatefulProxyTransaction``.
public enum ProxyCoreAction: Sendable, Hashable {
    /// Send this response to the caller, the way the request came (RFC 3261 18.2.2).
    case sendUpstream(SIPResponse)
    /// Send this `200` to the caller's CANCEL (RFC 3261 16.10); it completes the CANCEL's
    /// own non-INVITE server transaction, not the INVITE's.
    case answerCancel(SIPResponse)
    /// Send this request (the branch's request, its retransmission, its ACK or its CANCEL)
    /// on the hop of branch `branch`.
    case sendDownstream(branch: Int, request: SIPRequest, to: ProxyBranchTarget)
    /// Start, or restart (replacing the running one), a timer.
    case startTimer(ProxyCoreTimer, after: Duration)
    /// Stop a timer; a late firing is ignored anyway.
    case stopTimer(ProxyCoreTimer)
    /// A branch ended (metrics: branches by outcome).
    case branchEnded(branch: Int, BranchOutcome)
    /// The final response is decided and sent (metrics: final responses by code; a log
    /// line for a failed call set-up).
    case finished(ProxyCompletion)
    /// Every transaction is over: forget this object.
    case terminated
}

/// What happens to a ``StatefulProxyTransaction``.
public enum ProxyCoreEvent: Sendable, Hashable {
    /// A response whose top Via was ours on branch `branch` (see
    /// ``ProxyForwarding/stripOwnVia(_:identity:)``), Via removed. Responses to our CANCELs
    /// carry the same branch and are told apart by their CSeq method.
    case response(branch: Int, SIPResponse)
    /// The caller retransmitted the INVITE.
    case retransmittedRequest
    /// The caller's ACK for a non-2xx final response (it matched the INVITE's server
    /// transaction, RFC 3261 17.2.3; a 2xx ACK is a request of its own).
    case ack
    /// The caller's CANCEL (matched to the INVITE, 9.2).
    case cancel(SIPRequest)
    /// A timer fired.
    case timerFired(ProxyCoreTimer)
    /// Branch `branch`'s hop failed to send.
    case transportError(branch: Int)
    /// Branch `branch`'s target flow is gone.
    case flowFailed(branch: Int)
}

/// A whole proxied request: the response context (``ProxyTransaction``) with a client
/// transaction per branch, one per CANCEL we send, and for an INVITE the server
/// transaction towards the caller. The host only sends what it is told, runs timers and
/// feeds responses and timer firings back.
public struct StatefulProxyTransaction: Sendable {
    enum Client: Sendable {
        case invite(InviteClientTransaction)
        case nonInvite(NonInviteClientTransaction)
    }

    /// The response context.
    public private(set) var context: ProxyTransaction
    var clients: [Int: Client] = [:]
    var cancels: [Int: NonInviteClientTransaction] = [:]
    var targets: [Int: ProxyBranchTarget] = [:]
    var server: InviteServerTransaction?
    let timers: ProxyTimerConfiguration
    /// Everything is over.
    public private(set) var isTerminated = false

    /// A proxied request that arrived over `inbound` (reliable or not decides the INVITE
    /// server transaction's retransmissions).
    public init(request: ValidatedRequest, targets: TargetSet, inbound: SIPTransportProtocol,
                timers: ProxyTimerConfiguration = .init(), server: String? = nil) {
        self.context = ProxyTransaction(request: request, targets: targets, timers: timers, server: server)
        self.timers = timers
        if request.request.method == .invite {
            self.server = InviteServerTransaction(request: request.request, reliable: inbound.isReliable, timers: timers,
                                                  server: server)
        }
    }

    /// Starts: `100 Trying` for an INVITE and the first q group's branches.
    public mutating func start() -> [ProxyCoreAction] {
        var out: [ProxyCoreAction] = []
        run(context.start(), into: &out)
        checkTerminated(into: &out)
        return out
    }

    /// Feeds one event.
    public mutating func handle(_ event: ProxyCoreEvent) -> [ProxyCoreAction] {
        var out: [ProxyCoreAction] = []
        switch event {
        case .response(let i, let r):
            if r.headers.cseqMethod == .cancel, r.headers.cseqMethod != context.request.request.method {
                if var c = cancels[i] { let a = c.handle(.response(r)); cancels[i] = c; cancelActions(i, a, into: &out) }
            } else if let c = clients[i] {
                clientActions(i, Self.feed(c, .response(r), into: &clients[i]), into: &out)
            } else {
                // Its client transaction is gone: a late 2xx still goes up (RFC 3261 16.7 step 5).
                run(context.handle(.response(branch: i, r)), into: &out)
            }
        case .retransmittedRequest:
            serverActions(server?.handle(.retransmittedRequest) ?? [], into: &out)
        case .ack:
            serverActions(server?.handle(.ack) ?? [], into: &out)
        case .cancel(let c):
            run(context.handle(.cancel(c)), into: &out)
        case .timerFired(let t):
            switch t {
            case .proxy(let id): run(context.handle(.timerFired(id)), into: &out)
            case .branch(let i, let tt):
                if let c = clients[i] { clientActions(i, Self.feed(c, .timerFired(tt), into: &clients[i]), into: &out) }
            case .cancel(let i, let tt):
                if var c = cancels[i] { let a = c.handle(.timerFired(tt)); cancels[i] = c; cancelActions(i, a, into: &out) }
            case .server(let tt):
                serverActions(server?.handle(.timerFired(tt)) ?? [], into: &out)
            }
        case .transportError(let i):
            if let c = clients[i] { clientActions(i, Self.feed(c, .transportError, into: &clients[i]), into: &out) }
        case .flowFailed(let i):
            if let c = clients[i] { clientActions(i, Self.abandon(c, into: &clients[i]), into: &out) }
            run(context.handle(.flowFailed(branch: i)), into: &out)
        }
        checkTerminated(into: &out)
        return out
    }

    // MARK: Plumbing

    static func feed(_ c: Client, _ e: ClientTransactionEvent, into slot: inout Client?) -> [TransactionAction] {
        switch c {
        case .invite(var t): let a = t.handle(e); slot = .invite(t); return a
        case .nonInvite(var t): let a = t.handle(e); slot = .nonInvite(t); return a
        }
    }

    static func abandon(_ c: Client, into slot: inout Client?) -> [TransactionAction] {
        switch c {
        case .invite(var t): let a = t.abandon(); slot = .invite(t); return a
        case .nonInvite(var t): let a = t.abandon(); slot = .nonInvite(t); return a
        }
    }

    /// Carries out the response context's actions; responses delivered by the client
    /// transactions feed it again, so the work list grows until it is empty.
    mutating func run(_ actions: [ProxyAction], into out: inout [ProxyCoreAction]) {
        for action in actions {
            switch action {
            case .sendUpstream(let r):
                if server != nil { serverActions(server?.handle(.send(r)) ?? [], into: &out) } else { out.append(.sendUpstream(r)) }
            case .answerCancel(let r):
                out.append(.answerCancel(r))
            case .forward(let i, let request, let target):
                targets[i] = target
                let reliable = target.via.transport.isReliable
                if request.method == .invite {
                    var t = InviteClientTransaction(request: request, reliable: reliable, timers: timers)
                    let a = t.start()
                    clients[i] = .invite(t)
                    clientActions(i, a, into: &out)
                } else {
                    var t = NonInviteClientTransaction(request: request, reliable: reliable, timers: timers)
                    let a = t.start()
                    clients[i] = .nonInvite(t)
                    clientActions(i, a, into: &out)
                }
            case .cancelBranch(let i, let request):
                guard let target = targets[i] else { continue }
                var t = NonInviteClientTransaction(request: request, reliable: target.via.transport.isReliable, timers: timers)
                let a = t.start()
                cancels[i] = t
                cancelActions(i, a, into: &out)
            case .abandonBranch(let i):
                if let c = clients[i] { clientActions(i, Self.abandon(c, into: &clients[i]), into: &out) }
            case .startTimer(let id, let d):
                out.append(.startTimer(.proxy(id), after: d))
            case .stopTimer(let id):
                out.append(.stopTimer(.proxy(id)))
            case .branchEnded(let i, let outcome):
                out.append(.branchEnded(branch: i, outcome))
            case .finished(let c):
                out.append(.finished(c))
            }
        }
    }

    mutating func clientActions(_ i: Int, _ actions: [TransactionAction], into out: inout [ProxyCoreAction]) {
        for a in actions {
            switch a {
            case .sendRequest(let r):
                if let target = targets[i] { out.append(.sendDownstream(branch: i, request: r, to: target)) }
            case .deliver(let r): run(context.handle(.response(branch: i, r)), into: &out)
            case .startTimer(let t, let d): out.append(.startTimer(.branch(i, t), after: d))
            case .stopTimer(let t): out.append(.stopTimer(.branch(i, t)))
            case .timedOut: run(context.handle(.timeout(branch: i)), into: &out)
            case .transportFailed: run(context.handle(.transportError(branch: i)), into: &out)
            case .terminated: clients[i] = nil
            case .sendResponse: break
            }
        }
    }

    mutating func cancelActions(_ i: Int, _ actions: [TransactionAction], into out: inout [ProxyCoreAction]) {
        for a in actions {
            switch a {
            case .sendRequest(let r):
                if let target = targets[i] { out.append(.sendDownstream(branch: i, request: r, to: target)) }
            case .startTimer(let t, let d): out.append(.startTimer(.cancel(i, t), after: d))
            case .stopTimer(let t): out.append(.stopTimer(.cancel(i, t)))
            case .terminated: cancels[i] = nil
            // The 200 to our CANCEL carries nothing; the INVITE's 487 (or the wait) ends the branch.
            case .deliver, .timedOut, .transportFailed, .sendResponse: break
            }
        }
    }

    mutating func serverActions(_ actions: [TransactionAction], into out: inout [ProxyCoreAction]) {
        for a in actions {
            switch a {
            case .sendResponse(let r): out.append(.sendUpstream(r))
            case .startTimer(let t, let d): out.append(.startTimer(.server(t), after: d))
            case .stopTimer(let t): out.append(.stopTimer(.server(t)))
            case .terminated: server = nil
            // Timer H (no ACK) and a failed upstream send end the server transaction only.
            case .timedOut, .transportFailed, .deliver, .sendRequest: break
            }
        }
    }

    mutating func checkTerminated(into out: inout [ProxyCoreAction]) {
        guard !isTerminated, context.isFinished, clients.isEmpty, cancels.isEmpty, server == nil else { return }
        isTerminated = true
        out.append(.terminated)
    }
}

extension SIPHeaders {
    /// The CSeq method, nil when the CSeq is missing or malformed.
    var cseqMethod: SIPMethod? { ((try? cseq) ?? nil)?.method }
}
