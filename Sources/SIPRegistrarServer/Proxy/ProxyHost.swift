import Logging
import NIOConcurrencyHelpers
import SIPMessage
import SIPProxy
import SIPTransport
import Synchronization

/// What the proxy reports, for metrics and the one log line per failed call set-up.
struct ProxyObserver: Sendable {
    /// A request went out on a branch (method).
    var forwarded: @Sendable (SIPMethod) -> Void = { _ in }
    /// A branch ended.
    var branchEnded: @Sendable (BranchOutcome) -> Void = { _ in }
    /// A proxied request got its final response: method, code, reason, the request.
    var finished: @Sendable (SIPRequest, ProxyCompletion) -> Void = { _, _ in }
    /// Transactions held changed by this much.
    var inFlight: @Sendable (Int) -> Void = { _ in }
}

/// Runs the transaction-stateful proxy (``StatefulProxyTransaction``) on the dispatcher:
/// requests the receive chain did not answer are validated (RFC 3261 16.3, 16.4), their
/// targets looked up (16.5) and reached over the hop each binding calls for, the actions of
/// the pure state machine are carried out on sockets and timers, and responses whose top
/// Via is ours are fed back to it (16.7).
///
/// Which hop (issue "Reach registered softphones"): a contact registered over TCP or TLS
/// is reached over the connection it registered on (RFC 5626 flows, or plain connection
/// reuse); a UDP contact at the address and port its REGISTER came from; anything else
/// through leg selection by the contact URI (`sips:` only over TLS). A `sips:` request, or
/// a `sips:` contact, never leaves over a hop that is not TLS (RFC 5630).
final class ProxyHost: SIPForwarder {
    struct Entry {
        var machine: StatefulProxyTransaction
        var upstream: SIPUpstream
        /// Running timers with a generation, so that a firing that raced a restart is ignored.
        var timers = RunningTimers()
        /// The branches it sent over flows, each with its flow (see ``ProxyHost/flowBranches``):
        /// on termination exactly these leave the index, whatever else the flows carry.
        var flowBranches: [(flow: UInt64, branch: Int)] = []
    }

    /// The running timers of one transaction by name: a handful at most (Timer C, A/B or
    /// E/F, D or K), so a list searched in order, one allocation, instead of a hash table.
    struct RunningTimers {
        private var slots: [(name: ProxyCoreTimer, generation: UInt64, timer: any SIPScheduledTimer)] = []

        subscript(_ name: ProxyCoreTimer) -> (generation: UInt64, timer: any SIPScheduledTimer)? {
            get { slots.first { $0.name == name }.map { ($0.generation, $0.timer) } }
            set {
                if let i = slots.firstIndex(where: { $0.name == name }) {
                    if let newValue { slots[i] = (name, newValue.generation, newValue.timer) } else { slots.remove(at: i) }
                } else if let newValue {
                    if slots.capacity == 0 { slots.reserveCapacity(4) }
                    slots.append((name, newValue.generation, newValue.timer))
                }
            }
        }

        /// Cancels every timer and forgets them.
        mutating func cancelAll() {
            for s in slots { s.timer.cancel() }
            slots = []
        }
    }

    /// Things to do outside the lock, in order.
    enum Work {
        case upstream(SIPUpstream, SIPResponse)
        case downstream(key: UInt64, branch: Int, SIPRequest, SIPHop)
        case finished(SIPRequest, ProxyCompletion)
        case branchEnded(BranchOutcome)
        case terminated
    }

    let dispatcher: Dispatcher
    let location: any ProxyLocationService
    let identity: ProxyIdentity
    let validator: ProxyRequestValidator
    let codec: FlowTokenCodec
    let timerConfiguration: ProxyTimerConfiguration
    let server: String?
    let observer: ProxyObserver
    let logger: Logger
    /// Transactions by their branch key's transaction hash.
    private let shards: [NIOLockedValueBox<[UInt64: Entry]>]
    /// The branches sent over each flow whose transactions are not over. Taken after a
    /// shard's lock, never before it.
    private let flowBranches = NIOLockedValueBox(FlowBranchIndex<UInt64>())
    private let generation = Atomic<UInt64>(0)

    init(dispatcher: Dispatcher, location: any ProxyLocationService, identity: ProxyIdentity, codec: FlowTokenCodec,
         timers: ProxyTimerConfiguration = .init(), server: String?, observer: ProxyObserver = .init(), logger: Logger) {
        self.dispatcher = dispatcher
        self.location = location
        self.identity = identity
        self.validator = ProxyRequestValidator(identity: identity, server: server)
        self.codec = codec
        self.timerConfiguration = timers
        self.server = server
        self.observer = observer
        self.logger = logger
        self.shards = (0..<32).map { _ in NIOLockedValueBox([:]) }
    }

    private func shard(_ key: UInt64) -> NIOLockedValueBox<[UInt64: Entry]> {
        // The key is an FNV-1a hash already: its upper bits fold into the lower ones.
        shards[Int((key ^ key >> 32) % UInt64(shards.count))]
    }

    // MARK: Requests

    func forward(_ request: SIPRequest, from source: SIPSource, upstream: SIPUpstream) -> Bool {
        let branchKey = (try? ProxyBranchKey(request: request, topVia: upstream.topVia)) ?? nil
        let key = branchKey?.transaction
        switch request.method {
        case .ack:
            // The ACK of a non-2xx final response belongs to the INVITE's server transaction (17.2.3);
            // any other ACK (a 2xx's, in a dialog) is forwarded statelessly.
            if let key, exists(key) {
                handle(key, .ack)
            } else {
                forwardStatelessly(request, from: source, branchKey: branchKey)
            }
            return true
        case .cancel:
            // RFC 3261 16.10: the CANCEL gets its 200 from the response context it cancels.
            guard let key, exists(key) else {
                upstream.send(.answering(request, 481, server: server))
                return true
            }
            handle(key, .cancel(request), cancelUpstream: upstream)
            return true
        default:
            break
        }
        let validated: ValidatedRequest
        switch validator.validate(request, branchKey: branchKey) {
        case .reject(let r):
            upstream.send(r)
            return true
        case .forward(let v):
            validated = v
        }
        let decision = validated.route(arrivedOn: source, identity: identity, codec: codec, server: server)
        // A request inside a dialog is forwarded only along a Record-Route we signed: anything
        // else would let an unauthenticated request claim to be in a dialog with a local user.
        // `route` forwards along our Record-Route exactly when a removed Route carried our token.
        let inOurDialog: Bool
        if case .forward = decision { inOurDialog = true } else { inOurDialog = false }
        if ((try? request.headers.tag(.to)) ?? nil) != nil, !inOurDialog, decision != .local {
            upstream.send(.answering(request, 481, reason: "Dialog Not Known Here", server: server))
            return true
        }
        var targets: [ProxyTarget]
        var kind = TargetKind.location
        switch decision {
        case .local:
            return false
        case .reject(let r):
            upstream.send(r)
            return true
        case .forward(let flow):
            targets = [validated.dialogTarget(flow: flow)]
            kind = flow == nil ? .requestURI : .flowToken
        case .lookUp(let uri):
            let result = location.targets(for: uri)
            if let r = result.failureResponse(to: validated.request, server: server) {
                observer.finished(validated.request, ProxyCompletion(statusCode: r.statusCode, reason: "no target: \(result)"))
                upstream.send(r)
                return true
            }
            guard case .targets(let list) = result else { return true }
            targets = list
        }
        let secure = validated.request.uri.isSIPS || validated.receivedURI.isSIPS
        let branchTargets = targets.compactMap { branchTarget($0, kind: kind, for: validated, from: source, secure: secure) }
        guard !branchTargets.isEmpty else {
            // Every target needed a leg we do not have (e.g. TLS for a sips: contact).
            let warning = SIPWarning(code: 380, agent: validated.request.uri.hostName, text: "SIPS Not Allowed")
            let r = SIPResponse.answering(validated.request, 480, headers: secure ? [(.warning, warning.description)] : [],
                                          server: server)
            observer.finished(validated.request, ProxyCompletion(statusCode: 480, reason: "no reachable target"))
            upstream.send(r)
            return true
        }
        // The transaction's key: the branch key `validate` used (a request whose key cannot be read is rejected there).
        let txKey = validated.branchKey.transaction
        var machine = StatefulProxyTransaction(request: validated, targets: TargetSet(branchTargets), inbound: source.transport,
                                               timers: timerConfiguration, server: server)
        var work: [Work] = []
        let inserted = shard(txKey).withLockedValue { map -> Bool in
            guard map[txKey] == nil else { return false }
            let actions = machine.start()
            var entry = Entry(machine: machine, upstream: upstream)
            apply(actions, key: txKey, entry: &entry, cancelUpstream: nil, into: &work)
            if !entry.machine.isTerminated { map[txKey] = entry }
            return true
        }
        guard inserted else {
            // The same transaction twice (a retransmission the dispatcher did not absorb): it is in hand.
            return true
        }
        observer.inFlight(1)
        observer.forwarded(request.method)
        perform(work)
        return true
    }

    private func exists(_ key: UInt64) -> Bool { shard(key).withLockedValue { $0[key] != nil } }

    /// A 2xx ACK (or another request we keep no state for): our Via, the hop its Route or
    /// flow token names, sent once (RFC 3261 16.11).
    func forwardStatelessly(_ request: SIPRequest, from source: SIPSource, branchKey: ProxyBranchKey? = nil) {
        guard case .forward(let validated) = validator.validate(request, branchKey: branchKey) else { return }
        let target: ProxyTarget
        let kind: TargetKind
        switch validated.route(arrivedOn: source, identity: identity, codec: codec, server: server) {
        case .forward(let flow):
            target = validated.dialogTarget(flow: flow)
            kind = flow == nil ? .requestURI : .flowToken
        case .lookUp, .local, .reject:
            // Not in a dialog we Record-Routed: an ACK there is not ours to forward.
            return
        }
        let secure = validated.request.uri.isSIPS || validated.receivedURI.isSIPS
        guard let bt = branchTarget(target, kind: kind, for: validated, from: source, secure: secure) else { return }
        observer.forwarded(request.method)
        let out = ProxyForwarding.branchRequest(validated, target: bt.target, index: 0, via: bt.via, recordRoute: nil)
        send(out, over: Self.hop(bt.target)) { _ in }
    }

    /// Whether the top Route names us with a flow token we (or a node sharing our key) signed:
    /// a request another node forwarded to one of our flows after authenticating it.
    func carriesOwnFlowToken(_ request: SIPRequest) -> Bool {
        guard let first = request.headers[.route].flatMap(SIPHeaders.firstOfList), let route = NameAddress.parse(first),
              identity.isUs(route.uri), let user = route.uri.user else { return false }
        return codec.decode(user) != nil
    }

    func flowClosed(_ flowID: UInt64) {
        let refs = flowBranches.withLockedValue { $0.close(flow: flowID) }
        for r in refs { handle(r.key, .flowFailed(branch: r.branch)) }
    }

    // MARK: Responses

    func receive(_ response: SIPResponse, from source: SIPSource) -> Bool {
        guard let top = (try? response.headers.topVia) ?? nil, let branch = top.branch, branch.hasPrefix(ProxyBranchKey.prefix) else {
            return false
        }
        guard let own = ProxyForwarding.stripOwnVia(response, top: top, identity: identity) else { return false }
        let key = own.branchKey.transaction
        if exists(key) {
            handle(key, .response(branch: own.branchIndex, own.response))
        } else if !own.isForUs, own.response.statusCode >= 200, own.response.statusCode < 300 {
            // A retransmitted 2xx after the transaction is gone still goes up (16.7 step 5, 16.11).
            dispatcher.sendResponseStatelessly(own.response)
        }
        return true
    }

    // MARK: Running the machine

    func handle(_ key: UInt64, _ event: ProxyCoreEvent, cancelUpstream: SIPUpstream? = nil, generation gen: UInt64? = nil) {
        var work: [Work] = []
        shard(key).withLockedValue { map in
            // Taken out of the map while it runs: a copy left in the map would make every
            // collection the machine changes (branches, timers) copy itself first.
            guard var entry = map.removeValue(forKey: key) else { return }
            if case .timerFired(let t) = event, let gen {
                // Restarted or stopped since: this firing is stale.
                guard entry.timers[t]?.generation == gen else {
                    map[key] = entry
                    return
                }
                entry.timers[t] = nil
            }
            let actions = entry.machine.handle(event)
            apply(actions, key: key, entry: &entry, cancelUpstream: cancelUpstream, into: &work)
            if !entry.machine.isTerminated { map[key] = entry }
        }
        perform(work)
    }

    /// Timers are started and stopped under the lock (cheap); everything else is queued.
    private func apply(_ actions: [ProxyCoreAction], key: UInt64, entry: inout Entry, cancelUpstream: SIPUpstream?,
                       into work: inout [Work]) {
        work.reserveCapacity(work.count + actions.count)
        for action in actions {
            switch action {
            case .sendUpstream(let r):
                work.append(.upstream(entry.upstream, r))
            case .answerCancel(let r):
                if let cancelUpstream { work.append(.upstream(cancelUpstream, r)) }
            case .sendDownstream(let branch, let request, let to):
                let hop = Self.hop(to.target)
                if case .flow(let id) = hop, request.method != .ack {
                    entry.flowBranches.append((id, branch))
                    flowBranches.withLockedValue { $0.insert(flow: id, key: key, branch: branch) }
                }
                work.append(.downstream(key: key, branch: branch, request, hop))
            case .startTimer(let t, let after):
                entry.timers[t]?.timer.cancel()
                let gen = generation.wrappingAdd(1, ordering: .relaxed).newValue
                let timer = dispatcher.schedule(after: after) { [weak self] in self?.handle(key, .timerFired(t), generation: gen) }
                entry.timers[t] = (gen, timer)
            case .stopTimer(let t):
                entry.timers[t]?.timer.cancel()
                entry.timers[t] = nil
            case .branchEnded(_, let outcome):
                work.append(.branchEnded(outcome))
            case .finished(let c):
                work.append(.finished(entry.machine.context.request.request, c))
            case .terminated:
                entry.timers.cancelAll()
                if !entry.flowBranches.isEmpty {
                    let sent = entry.flowBranches
                    flowBranches.withLockedValue { $0.remove(key: key, sent: sent) }
                }
                work.append(.terminated)
            }
        }
    }

    private func perform(_ work: [Work]) {
        for w in work {
            switch w {
            case .upstream(let up, let r):
                up.send(r)
            case .downstream(let key, let branch, let request, let hop):
                send(request, over: hop) { [weak self] error in
                    switch error {
                    case .flowGone: self?.handle(key, .flowFailed(branch: branch))
                    case .unreachable(let why):
                        self?.logger.debug("branch unreachable", metadata: ["sip.hop": "\(hop)", "error": "\(why.logSafe)"])
                        self?.handle(key, .transportError(branch: branch))
                    }
                }
            case .finished(let request, let completion):
                observer.finished(request, completion)
            case .branchEnded(let outcome):
                observer.branchEnded(outcome)
            case .terminated:
                observer.inFlight(-1)
            }
        }
    }

    /// Sends now over an open flow or UDP; a new TCP/TLS connection is opened in a task.
    private func send(_ request: SIPRequest, over hop: SIPHop, failed: @escaping @Sendable (SIPHopError) -> Void) {
        var hop = hop
        if case .stream(let t) = hop, let open = dispatcher.openFlow(to: t.transport, host: t.host, port: t.port) {
            hop = .flow(open)
        }
        switch hop {
        case .flow, .udp:
            do throws(SIPHopError) {
                try dispatcher.sendRequestNow(request, over: hop)
            } catch {
                failed(error)
            }
        case .stream:
            let dispatcher = self.dispatcher
            Task {
                do throws(SIPHopError) {
                    try await dispatcher.sendRequest(request, over: hop)
                } catch {
                    failed(error)
                }
            }
        }
    }
}
