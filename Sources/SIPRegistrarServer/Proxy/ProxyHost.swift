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
        var timers: [ProxyCoreTimer: (generation: UInt64, timer: any SIPScheduledTimer)] = [:]
        /// The flows its branches went out on (see ``ProxyHost/flowBranches``).
        var flows: Set<UInt64> = []
    }

    /// A branch of a transaction.
    struct BranchRef: Hashable, Sendable {
        var key: String
        var branch: Int
    }

    /// Things to do outside the lock, in order.
    enum Work {
        case upstream(SIPUpstream, SIPResponse)
        case downstream(key: String, branch: Int, SIPRequest, SIPHop)
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
    private let shards: [NIOLockedValueBox<[String: Entry]>]
    /// The branches sent over each flow whose transactions are not over: when the flow closes
    /// they fail at once (430/480, RFC 5626 5.3) instead of waiting for Timer B or F. Taken
    /// after a shard's lock, never before it.
    private let flowBranches = NIOLockedValueBox<[UInt64: Set<BranchRef>]>([:])
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

    private func shard(_ key: String) -> NIOLockedValueBox<[String: Entry]> {
        var h: UInt32 = 2_166_136_261
        for b in key.utf8 { h = (h ^ UInt32(b)) &* 16_777_619 }
        return shards[Int(h % UInt32(shards.count))]
    }

    // MARK: Requests

    func forward(_ request: SIPRequest, from source: SIPSource, upstream: SIPUpstream) -> Bool {
        let branchKey = (try? ProxyBranchKey(request: request)) ?? nil
        let key = branchKey?.transactionHash
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
        if ((try? request.headers.to) ?? nil)?.tag != nil, !validated.isInOurDialog(codec: codec), decision != .local {
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
        let txKey = validated.branchKey.transactionHash
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

    private func exists(_ key: String) -> Bool { shard(key).withLockedValue { $0[key] != nil } }

    /// Where a target came from, which decides how its hop is found.
    enum TargetKind {
        /// A binding from the location service.
        case location
        /// An in-dialog request whose Route carried our flow token: the token's flow or address.
        case flowToken
        /// An in-dialog request without a token for another flow: its Request-URI's hop.
        case requestURI
    }

    /// The branch target for one target: the hop (written into the target's transport,
    /// address and flow), our Via leg for it and the Record-Route plan. Nil when the target
    /// cannot be reached without breaking SIPS or with the legs we have.
    func branchTarget(_ t: ProxyTarget, kind: TargetKind, for request: ValidatedRequest, from source: SIPSource,
                      secure: Bool) -> ProxyBranchTarget? {
        var target = t
        let mustBeTLS = secure || t.uri.isSIPS
        if t.flowID == RegistrarLocationService.goneFlow {
            // Held by a node that is gone: fails as a closed flow (430/480).
        } else if kind == .flowToken {
            // The flow (or UDP address) the token names; SIPS still needs it to be TLS.
            if mustBeTLS, !t.transport.isSecure { return nil }
        } else if let first = t.path.first, let route = NameAddress.parse(first) {
            // RFC 3327: the edge proxy on the Path holds the flow; the first Path URI is the next hop.
            guard let hop = uriHop(route.uri, mustBeTLS: mustBeTLS) else { return nil }
            target.flowID = nil
            target.transport = hop.transport
            target.sourceHost = hop.host
            target.sourcePort = hop.port
        } else if kind == .location, let flow = t.flowID, t.transport.isReliable, !mustBeTLS || t.transport.isSecure {
            // The connection it registered on, open or not: a closed one fails the branch (430/480).
            target.flowID = flow
        } else if kind == .location, t.transport == .udp, t.flowID == nil, !mustBeTLS {
            // NAT: the address and port the REGISTER came from.
            target.flowID = nil
        } else {
            guard let hop = uriHop(t.uri, mustBeTLS: mustBeTLS) else { return nil }
            target.flowID = dispatcher.openFlow(to: hop.transport, host: hop.host, port: hop.port)
            target.transport = hop.transport
            target.sourceHost = hop.host
            target.sourcePort = hop.port
        }
        guard dispatcher.legTransports.contains(target.transport),
              let out = dispatcher.advertisedLeg(target.transport, peer: target.sourceHost),
              let inbound = dispatcher.advertisedLeg(source.transport, peer: source.remoteHost,
                                                     local: source.transport.isReliable ? source.localHost : nil) else { return nil }
        let outLeg = ProxyLeg(transport: target.transport, host: out.host, port: out.port)
        let inLeg = ProxyLeg(transport: source.transport, host: inbound.host, port: inbound.port)
        var plan: RecordRoutePlan?
        let method = request.request.method
        let inDialog = ((try? request.request.headers.to) ?? nil)?.tag != nil
        if method != .register, !inDialog {
            // Both directions of the dialog find their peer's flow: two entries, each with a token
            // (RFC 5658 double Record-Route, RFC 5626 5.3 flow tokens), even on one transport. A
            // request inside a dialog cannot change its route set (RFC 3261 12.2): none there.
            plan = RecordRoutePlan.signed(inbound: inLeg, caller: FlowToken(source: source), outbound: outLeg,
                                          callee: FlowToken(flowID: target.flowID, transport: target.transport,
                                                            host: target.sourceHost, port: target.sourcePort),
                                          codec: codec, forceDouble: true)
        }
        return ProxyBranchTarget(target: target, via: outLeg, recordRoute: plan)
    }

    /// The hop of a URI by leg selection: `sips:` (or a TLS requirement) only over TLS.
    func uriHop(_ uri: SIPURI, mustBeTLS: Bool) -> SendTarget? {
        var u = uri
        if mustBeTLS, !u.isSIPS {
            guard u.transport == nil || u.transport == "tls" || u.transport == "wss" else { return nil }
            if u.transport == nil { u.parameters.set("transport", "tls") }
        }
        guard let t = try? LegSelection.select(u, available: dispatcher.legTransports) else { return nil }
        if mustBeTLS, !t.transport.isSecure { return nil }
        return t
    }

    /// The hop a branch target's fields name.
    static func hop(_ target: ProxyTarget) -> SIPHop {
        if let flow = target.flowID { return .flow(flow) }
        if target.transport == .udp { return .udp(host: target.sourceHost, port: target.sourcePort) }
        return .stream(SendTarget(transport: target.transport, host: target.sourceHost, port: target.sourcePort))
    }

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
        guard let first = request.headers.splitValues(.route).first, let route = NameAddress.parse(first),
              identity.isUs(route.uri), let user = route.uri.user else { return false }
        return codec.decode(user) != nil
    }

    func flowClosed(_ flowID: UInt64) {
        let refs = flowBranches.withLockedValue { $0.removeValue(forKey: flowID) } ?? []
        for r in refs { handle(r.key, .flowFailed(branch: r.branch)) }
    }

    // MARK: Responses

    func receive(_ response: SIPResponse, from source: SIPSource) -> Bool {
        guard let branch = ((try? response.headers.topVia) ?? nil)?.branch, branch.hasPrefix(ProxyBranchKey.prefix) else {
            return false
        }
        guard let own = ProxyForwarding.stripOwnVia(response, identity: identity) else { return false }
        let key = own.branchKey.transactionHash
        if exists(key) {
            handle(key, .response(branch: own.branchIndex, own.response))
        } else if !own.isForUs, own.response.statusCode >= 200, own.response.statusCode < 300 {
            // A retransmitted 2xx after the transaction is gone still goes up (16.7 step 5, 16.11).
            dispatcher.sendResponseStatelessly(own.response)
        }
        return true
    }

    // MARK: Running the machine

    func handle(_ key: String, _ event: ProxyCoreEvent, cancelUpstream: SIPUpstream? = nil, generation gen: UInt64? = nil) {
        var work: [Work] = []
        shard(key).withLockedValue { map in
            guard var entry = map[key] else { return }
            if case .timerFired(let t) = event, let gen {
                // Restarted or stopped since: this firing is stale.
                guard entry.timers[t]?.generation == gen else { return }
                entry.timers[t] = nil
            }
            let actions = entry.machine.handle(event)
            apply(actions, key: key, entry: &entry, cancelUpstream: cancelUpstream, into: &work)
            map[key] = entry.machine.isTerminated ? nil : entry
        }
        perform(work)
    }

    /// Timers are started and stopped under the lock (cheap); everything else is queued.
    private func apply(_ actions: [ProxyCoreAction], key: String, entry: inout Entry, cancelUpstream: SIPUpstream?,
                       into work: inout [Work]) {
        for action in actions {
            switch action {
            case .sendUpstream(let r):
                work.append(.upstream(entry.upstream, r))
            case .answerCancel(let r):
                if let cancelUpstream { work.append(.upstream(cancelUpstream, r)) }
            case .sendDownstream(let branch, let request, let to):
                let hop = Self.hop(to.target)
                if case .flow(let id) = hop, request.method != .ack {
                    entry.flows.insert(id)
                    _ = flowBranches.withLockedValue { $0[id, default: []].insert(BranchRef(key: key, branch: branch)) }
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
                for (_, t) in entry.timers { t.timer.cancel() }
                entry.timers = [:]
                if !entry.flows.isEmpty {
                    let flows = entry.flows
                    flowBranches.withLockedValue { index in
                        for id in flows {
                            guard let refs = index[id] else { continue }
                            let left = refs.filter { $0.key != key }
                            index[id] = left.isEmpty ? nil : left
                        }
                    }
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
