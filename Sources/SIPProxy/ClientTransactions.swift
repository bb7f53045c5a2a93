import SIPMessage

/// The timers of the client and server transactions (RFC 3261 17, table 4; RFC 6026).
public enum TransactionTimer: Sendable, Hashable, CaseIterable {
    /// INVITE client: retransmission (unreliable transports only).
    case a
    /// INVITE client: no response in 64·T1.
    case b
    /// INVITE client: how long the Completed state absorbs retransmitted final responses.
    case d
    /// Non-INVITE client: retransmission (unreliable transports only).
    case e
    /// Non-INVITE client: no final response in 64·T1.
    case f
    /// Non-INVITE client: how long the Completed state absorbs retransmitted responses.
    case k
    /// INVITE client (RFC 6026): how long further 2xx responses are passed up.
    case m
    /// INVITE server: final response retransmission (unreliable transports only).
    case g
    /// INVITE server: no ACK in 64·T1.
    case h
    /// INVITE server: how long the Confirmed state absorbs retransmitted ACKs.
    case i
    /// INVITE server (RFC 6026): how long the Accepted state lasts after a 2xx.
    case l
}

/// What a transaction asks its host to do. Starting a timer that is already running
/// replaces it: the host cancels the old one first.
public enum TransactionAction: Sendable, Hashable {
    /// Send (or retransmit) this request on the transaction's hop.
    case sendRequest(SIPRequest)
    /// Send (or retransmit) this response to the peer.
    case sendResponse(SIPResponse)
    /// Pass this response up to the transaction user (the proxy core).
    case deliver(SIPResponse)
    /// Start, or restart, a timer.
    case startTimer(TransactionTimer, after: Duration)
    /// Stop a timer; a late firing is ignored anyway.
    case stopTimer(TransactionTimer)
    /// Tell the transaction user: no answer in time (Timer B, F, or H).
    case timedOut
    /// Tell the transaction user: the transport could not send (17.1.4, 17.2.4).
    case transportFailed
    /// The transaction is over: forget it.
    case terminated
}

/// What happens to a client transaction.
public enum ClientTransactionEvent: Sendable, Hashable {
    /// A response matched to it (RFC 3261 17.1.3).
    case response(SIPResponse)
    /// A timer fired.
    case timerFired(TransactionTimer)
    /// The transport reported a failure.
    case transportError
}

/// The timers a transaction has running. Each start and stop becomes an action, and a
/// timer that fires after it was stopped (or restarted) is recognised as stale.
struct ArmedTimers: Sendable, Hashable {
    private var running: Set<TransactionTimer> = []

    mutating func start(_ t: TransactionTimer, after d: Duration, _ out: inout [TransactionAction]) {
        running.insert(t)
        out.append(.startTimer(t, after: d))
    }

    mutating func stop(_ t: TransactionTimer, _ out: inout [TransactionAction]) {
        if running.remove(t) != nil { out.append(.stopTimer(t)) }
    }

    /// A timer fired: true when it was running (it is not any more), false when stale.
    mutating func fired(_ t: TransactionTimer) -> Bool { running.remove(t) != nil }

    /// Stops every running timer (the transaction ends).
    mutating func stopAll(_ out: inout [TransactionAction]) {
        for t in TransactionTimer.allCases where running.contains(t) { out.append(.stopTimer(t)) }
        running.removeAll()
    }
}

/// The INVITE client transaction (RFC 3261 17.1.1 with the Accepted state of RFC 6026).
/// It acknowledges non-2xx final responses itself, hop by hop (17.1.1.3).
public struct InviteClientTransaction: Sendable {
    /// Its states (figure 5, RFC 6026 figure 3).
    public enum State: Sendable, Hashable { case calling, proceeding, completed, accepted, terminated }

    /// The INVITE.
    public let request: SIPRequest
    /// Whether the hop is reliable (TCP, TLS): no retransmissions, no waiting in Completed.
    public let reliable: Bool
    let timers: ProxyTimerConfiguration
    /// The current state.
    public private(set) var state: State = .calling
    var timerA: Duration
    var ack: SIPRequest?
    var armed = ArmedTimers()

    /// A transaction for `request` over a reliable or unreliable transport.
    public init(request: SIPRequest, reliable: Bool, timers: ProxyTimerConfiguration = .init()) {
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.timerA = timers.t1
    }

    /// Sends the INVITE: Timer A on UDP, Timer B always (17.1.1.2).
    public mutating func start() -> [TransactionAction] {
        var out: [TransactionAction] = [.sendRequest(request)]
        if !reliable { armed.start(.a, after: timerA, &out) }
        armed.start(.b, after: timers.transactionTimeout, &out)
        return out
    }

    /// Feeds one event.
    public mutating func handle(_ event: ClientTransactionEvent) -> [TransactionAction] {
        var out: [TransactionAction] = []
        switch event {
        case .timerFired(let t):
            guard armed.fired(t) else { return [] }
            switch (t, state) {
            case (.a, .calling):
                // 17.1.1.2: retransmit, and double the interval (no T2 cap for INVITE).
                timerA = timerA * 2
                out.append(.sendRequest(request))
                armed.start(.a, after: timerA, &out)
            case (.b, .calling):
                out.append(.timedOut)
                terminate(&out)
            case (.d, .completed), (.m, .accepted):
                terminate(&out)
            default:
                break
            }
        case .transportError:
            guard state == .calling || state == .proceeding else { return [] }
            out.append(.transportFailed)
            terminate(&out)
        case .response(let r):
            onResponse(r, &out)
        }
        return out
    }

    /// Ends the transaction at once, without waiting for a response (RFC 3261 16.8: Timer C
    /// without a provisional; 9.1: no answer to our CANCEL).
    public mutating func abandon() -> [TransactionAction] {
        guard state != .terminated else { return [] }
        var out: [TransactionAction] = []
        terminate(&out)
        return out
    }

    private mutating func onResponse(_ r: SIPResponse, _ out: inout [TransactionAction]) {
        let code = r.statusCode
        switch state {
        case .calling, .proceeding:
            if code < 200 {
                if state == .calling {
                    state = .proceeding
                    armed.stop(.a, &out)
                    armed.stop(.b, &out)
                }
                out.append(.deliver(r))
            } else if code < 300 {
                // RFC 6026 7.2: Accepted; further 2xx pass up until Timer M.
                state = .accepted
                armed.stop(.a, &out)
                armed.stop(.b, &out)
                out.append(.deliver(r))
                armed.start(.m, after: timers.transactionTimeout, &out)
            } else {
                state = .completed
                armed.stop(.a, &out)
                armed.stop(.b, &out)
                let ack = HopByHopRequests.ack(for: request, response: r)
                self.ack = ack
                out.append(.sendRequest(ack))
                out.append(.deliver(r))
                // 17.1.1.2: Timer D at least 32 s on UDP, zero on reliable transports.
                if reliable { terminate(&out) } else { armed.start(.d, after: .seconds(32), &out) }
            }
        case .completed:
            // A retransmitted final response: ACK again, do not pass it up.
            if code >= 300, let ack { out.append(.sendRequest(ack)) }
        case .accepted:
            if code / 100 == 2 { out.append(.deliver(r)) }
        case .terminated:
            break
        }
    }

    private mutating func terminate(_ out: inout [TransactionAction]) {
        armed.stopAll(&out)
        state = .terminated
        out.append(.terminated)
    }
}

/// The non-INVITE client transaction (RFC 3261 17.1.2).
public struct NonInviteClientTransaction: Sendable {
    /// Its states (figure 6).
    public enum State: Sendable, Hashable { case trying, proceeding, completed, terminated }

    /// The request.
    public let request: SIPRequest
    /// Whether the hop is reliable: no retransmissions, no waiting in Completed.
    public let reliable: Bool
    let timers: ProxyTimerConfiguration
    /// The current state.
    public private(set) var state: State = .trying
    var timerE: Duration
    var armed = ArmedTimers()

    /// A transaction for `request` over a reliable or unreliable transport.
    public init(request: SIPRequest, reliable: Bool, timers: ProxyTimerConfiguration = .init()) {
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.timerE = timers.t1
    }

    /// Sends the request: Timer E on UDP, Timer F always (17.1.2.2).
    public mutating func start() -> [TransactionAction] {
        var out: [TransactionAction] = [.sendRequest(request)]
        if !reliable { armed.start(.e, after: timerE, &out) }
        armed.start(.f, after: timers.transactionTimeout, &out)
        return out
    }

    /// Feeds one event.
    public mutating func handle(_ event: ClientTransactionEvent) -> [TransactionAction] {
        var out: [TransactionAction] = []
        switch event {
        case .timerFired(let t):
            guard armed.fired(t) else { return [] }
            switch (t, state) {
            case (.e, .trying):
                // 17.1.2.2: doubling, capped at T2.
                timerE = min(timerE * 2, timers.t2)
                out.append(.sendRequest(request))
                armed.start(.e, after: timerE, &out)
            case (.e, .proceeding):
                // In Proceeding the interval is T2.
                timerE = timers.t2
                out.append(.sendRequest(request))
                armed.start(.e, after: timerE, &out)
            case (.f, .trying), (.f, .proceeding):
                out.append(.timedOut)
                terminate(&out)
            case (.k, .completed):
                terminate(&out)
            default:
                break
            }
        case .transportError:
            guard state == .trying || state == .proceeding else { return [] }
            out.append(.transportFailed)
            terminate(&out)
        case .response(let r):
            guard state == .trying || state == .proceeding else { return [] }
            if r.statusCode < 200 {
                state = .proceeding
                out.append(.deliver(r))
            } else {
                state = .completed
                armed.stop(.e, &out)
                armed.stop(.f, &out)
                out.append(.deliver(r))
                // Timer K: T4 on UDP, zero on reliable transports.
                if reliable { terminate(&out) } else { armed.start(.k, after: timers.t4, &out) }
            }
        }
        return out
    }

    /// Ends the transaction at once (the flow it was sent on is gone).
    public mutating func abandon() -> [TransactionAction] {
        guard state != .terminated else { return [] }
        var out: [TransactionAction] = []
        terminate(&out)
        return out
    }

    private mutating func terminate(_ out: inout [TransactionAction]) {
        armed.stopAll(&out)
        state = .terminated
        out.append(.terminated)
    }
}
