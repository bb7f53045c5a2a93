import SIPMessage

/// What happens to an INVITE server transaction.
public enum ServerTransactionEvent: Sendable, Hashable {
    /// The transaction user (the proxy core) sends this response upstream.
    case send(SIPResponse)
    /// The INVITE arrived again (matched per RFC 3261 17.2.3).
    case retransmittedRequest
    /// The ACK for a non-2xx final response arrived.
    case ack
    /// A timer fired.
    case timerFired(TransactionTimer)
    /// The transport reported a failure.
    case transportError
}

/// The INVITE server transaction (RFC 3261 17.2.1 with the Accepted state of RFC 6026):
/// `100 Trying` at once, the last provisional resent on a retransmitted INVITE, a non-2xx
/// final response retransmitted on UDP (Timer G, capped at T2) until the ACK or Timer H,
/// the ACK's retransmissions absorbed for Timer I.
public struct InviteServerTransaction: Sendable {
    /// Its states (figure 7, RFC 6026 figure 5).
    public enum State: Sendable, Hashable { case proceeding, completed, confirmed, accepted, terminated }

    /// The INVITE.
    public let request: SIPRequest
    /// Whether the caller's hop is reliable.
    public let reliable: Bool
    let timers: ProxyTimerConfiguration
    let server: String?
    /// The current state.
    public private(set) var state: State = .proceeding
    var lastResponse: SIPResponse?
    var timerG: Duration
    var armed = ArmedTimers()

    /// A transaction for the INVITE `request`.
    public init(request: SIPRequest, reliable: Bool, timers: ProxyTimerConfiguration = .init(), server: String? = nil) {
        self.request = request
        self.reliable = reliable
        self.timers = timers
        self.server = server
        self.timerG = timers.t1
    }

    /// 17.2.1: a `100 Trying` at once, since a proxy does not know that its final answer
    /// will come within 200 ms.
    public mutating func start() -> [TransactionAction] {
        let trying = SIPResponse(to: request, statusCode: 100, server: server)
        lastResponse = trying
        return [.sendResponse(trying)]
    }

    /// Feeds one event.
    public mutating func handle(_ event: ServerTransactionEvent) -> [TransactionAction] {
        var out: [TransactionAction] = []
        switch event {
        case .send(let r):
            onSend(r, &out)
        case .retransmittedRequest:
            // 17.2.1: resend the last provisional (Proceeding) or the final (Completed).
            if state == .proceeding || state == .completed, let lastResponse { out.append(.sendResponse(lastResponse)) }
        case .ack:
            guard state == .completed else { return [] }
            state = .confirmed
            armed.stop(.g, &out)
            armed.stop(.h, &out)
            if reliable { terminate(&out) } else { armed.start(.i, after: timers.t4, &out) }
        case .timerFired(let t):
            guard armed.fired(t) else { return [] }
            switch (t, state) {
            case (.g, .completed):
                timerG = min(timerG * 2, timers.t2)
                if let lastResponse { out.append(.sendResponse(lastResponse)) }
                armed.start(.g, after: timerG, &out)
            case (.h, .completed):
                out.append(.timedOut)
                terminate(&out)
            case (.i, .confirmed), (.l, .accepted):
                terminate(&out)
            default:
                break
            }
        case .transportError:
            guard state != .terminated else { return [] }
            out.append(.transportFailed)
            terminate(&out)
        }
        return out
    }

    private mutating func onSend(_ r: SIPResponse, _ out: inout [TransactionAction]) {
        let code = r.statusCode
        switch state {
        case .proceeding:
            out.append(.sendResponse(r))
            if code < 200 {
                lastResponse = r
            } else if code < 300 {
                // RFC 6026 8.5: Accepted; further 2xx from the core pass through until Timer L.
                state = .accepted
                lastResponse = nil
                armed.start(.l, after: timers.transactionTimeout, &out)
            } else {
                state = .completed
                lastResponse = r
                if !reliable { armed.start(.g, after: timerG, &out) }
                armed.start(.h, after: timers.transactionTimeout, &out)
            }
        case .accepted:
            if code / 100 == 2 { out.append(.sendResponse(r)) }
        case .completed, .confirmed, .terminated:
            break
        }
    }

    private mutating func terminate(_ out: inout [TransactionAction]) {
        armed.stopAll(&out)
        state = .terminated
        out.append(.terminated)
    }
}
