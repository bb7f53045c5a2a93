import Logging
import NIOCore
import SIPMessage

extension Dispatcher {
    /// One message from a leg: a UDP datagram or a message cut from a stream.
    ///
    /// With ``TransportConfiguration/spreadAcrossLoops`` it may be processed on another event
    /// loop than the one that read it: one busy peer (an edge proxy, an SBC) sends everything
    /// to one UDP socket or connection, and would otherwise use one core. It stays on the
    /// reading loop while that loop keeps up (`readerIsBehind`: the leg's ``BacklogMeter``
    /// says it does not); ``LoopAssignment`` decides, and keeps the messages of one Call-ID on
    /// one loop in their order while any of them is in flight. The reading loop only finds the
    /// Call-ID (a scan of the head) before a hand-over.
    func handleInbound(_ bytes: ByteBuffer, source: SIPSource, loop: (any EventLoop)? = nil, readerIsBehind: Bool = false) {
        guard configuration.spreadAcrossLoops, loops.count > 1, let loop,
              let reader = loops.firstIndex(where: { $0 === loop }),
              let hash = bytes.withUnsafeReadableBytes({ Self.callIDHash($0) }) else {
            process(bytes, source: source, loop: loop, ticket: nil)
            return
        }
        let ticket = loopAssignment.assign(hash: hash, reader: reader, readerIsBehind: readerIsBehind)
        if ticket.loop == reader {
            process(bytes, source: source, loop: loop, ticket: ticket)
        } else {
            let target = loops[ticket.loop]
            target.execute { self.process(bytes, source: source, loop: target, ticket: ticket) }
        }
    }

    /// FNV-1a of the first Call-ID (or compact `i`) header value in the head; nil when there is none.
    static func callIDHash(_ p: UnsafeRawBufferPointer) -> UInt64? {
        guard let value = SIPFraming.headerValue(p, name: "call-id", compact: UInt8(ascii: "i")) else { return nil }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for i in value {
            hash ^= UInt64(p[i])
            hash = hash &* 0x100_0000_01b3
        }
        return hash
    }

    /// Parses and processes one message; `ticket` (a spread message's) is finished once the
    /// message is done with: at once, or when the task running its receive chain ends.
    func process(_ bytes: ByteBuffer, source: SIPSource, loop: (any EventLoop)?, ticket: LoopAssignment.Ticket?) {
        var handedToTask = false
        defer { if let ticket, !handedToTask { loopAssignment.finish(ticket) } }
        let message: SIPMessage
        do {
            message = try parser.parse(bytes)
        } catch {
            count(.parseErrors)
            logger.debug("unparsable message", metadata: ["net.peer": "\(source.remoteAddress)", "sip.error": "\(error.reasonPhrase)"])
            answerBroken(error, source: source)
            return
        }
        switch message {
        case .response(let response):
            if let forwarder, forwarder.receive(response, from: source) { return }
            clientTransactions.receive(response)
        case .request(var request):
            notify(.requestReceived(request.method, source.transport))
            // The top Via is parsed once here and reused for the transaction key and the answer's route.
            let topVia = Self.stampTopVia(&request, source: source)
            guard topVia != nil else {
                // RFC 3261 8.1.1.7 / 20.42, RFC 4475 3.1.2.1: a request whose top Via cannot be read
                // (empty parameters, no sent-by) cannot be answered along its Via: 400 to its source.
                count(.parseErrors)
                guard request.method != .ack else { return }
                let response = SIPResponse.answering(request, 400, reason: "Invalid Via Header", server: configuration.serverHeader)
                sendResponseBytes(response.serialized(), topVia: nil, source: source)
                return
            }
            if request.method == .ack {
                // ACK has no response and no transaction of its own (non-2xx ACKs are hop-by-hop).
                let ack = request
                handedToTask = true
                spawn(on: loop) {
                    defer { if let ticket { self.loopAssignment.finish(ticket) } }
                    let outcome = await self.runChain(ack, source: source)
                    _ = self.offerToForwarder(ack, outcome: outcome, upstream: SIPUpstream(dispatcher: self, key: nil, topVia: topVia,
                                                                                          source: source, sink: true))
                }
                return
            }
            let key = ServerTransactions.key(for: request, topVia: topVia)
            if let key {
                switch transactions.begin(key, now: Self.monotonicNow()) {
                case .new:
                    break
                case .absorb:
                    count(.retransmissionsAbsorbed)
                    return
                case .resend(let bytes):
                    count(.retransmissionsAbsorbed)
                    sendResponseBytes(bytes, topVia: topVia, source: source)
                    return
                }
            }
            // A forwarder reads our Route values itself (their flow tokens route in-dialog requests).
            if forwarder == nil || request.method == .register { stripOwnRoute(&request, source: source) }
            let toAnswer = request
            handedToTask = true
            spawn(on: loop) {
                defer { if let ticket { self.loopAssignment.finish(ticket) } }
                let request = toAnswer
                let outcome = await self.runChain(request, source: source)
                let upstream = SIPUpstream(dispatcher: self, key: key, topVia: topVia, source: source, sink: false)
                if self.offerToForwarder(request, outcome: outcome, upstream: upstream) { return }
                guard let response = self.answer(request, outcome: outcome) else {
                    // Dropped on purpose (abuse control): forget the transaction so nothing is cached.
                    if let key { self.transactions.abandon(key) }
                    return
                }
                upstream.send(response)
            }
        }
    }

    /// Hands a request the chain did not answer to the forwarder; true when it took it over.
    func offerToForwarder(_ request: SIPRequest, outcome: SIPReceiveOutcome, upstream: SIPUpstream) -> Bool {
        guard let forwarder else { return false }
        switch outcome {
        case .pass:
            return forwarder.forward(request, from: upstream.source, upstream: upstream)
        case .forward(let rewritten, let enriched):
            let up = SIPUpstream(dispatcher: self, key: upstream.key, topVia: upstream.topVia, source: enriched, sink: upstream.sink)
            return forwarder.forward(rewritten, from: enriched, upstream: up)
        case .respond, .discard:
            return false
        }
    }

    /// The answer to a request after the receive chain; a request nobody answers gets the
    /// dispatcher's own answer. Nil when a receiver dropped the request.
    func answer(_ request: SIPRequest, outcome: SIPReceiveOutcome) -> SIPResponse? {
        switch outcome {
        case .respond(let response):
            return response
        case .discard:
            return nil
        case .pass:
            let allow = (SIPHeaderName.allow, allowedMethods().map(\.rawValue).joined(separator: ", "))
            if request.method == .options {
                return .answering(request, 200, headers: [allow, (.accept, "application/sdp")], server: configuration.serverHeader)
            }
            return .answering(request, 405, headers: [allow], server: configuration.serverHeader)
        case .forward:
            // A receiver rewrote the request for forwarding, and this server does not proxy.
            return .answering(request, 501, reason: "Forwarding Not Implemented", server: configuration.serverHeader)
        }
    }

    /// What the dispatcher's own answers list in `Allow`: the methods the receivers in the
    /// chain declare, in chain order, then the forwarder's, then `OPTIONS`, which the
    /// dispatcher answers itself; each once.
    func allowedMethods() -> [SIPMethod] {
        var methods: [SIPMethod] = []
        let declared = receiversList().flatMap(\.allowedMethods) + (forwarder?.allowedMethods ?? []) + [.options]
        for m in declared where !methods.contains(m) { methods.append(m) }
        return methods
    }

    func runChain(_ request: SIPRequest, source: SIPSource) async -> SIPReceiveOutcome {
        var current = request
        var currentSource = source
        var lastForward: SIPReceiveOutcome?
        for receiver in receiversList() {
            switch await receiver.receive(current, from: currentSource) {
            case .respond(let r):
                return .respond(r)
            case .discard:
                return .discard
            case .pass:
                continue
            case .forward(let r, let s):
                current = r
                currentSource = s
                lastForward = .forward(r, s)
            }
        }
        return lastForward ?? .pass
    }

    /// Answers a request that failed to parse, when enough of it was readable (RFC 3261 21.4.1 / 513).
    func answerBroken(_ error: SIPParseError, source: SIPSource) {
        guard error.isRequest,
              var response = SIPResponse.answering(headers: error.partialHeaders, error.statusCode, reason: error.reasonPhrase,
                                                   server: configuration.serverHeader) else { return }
        var probe = SIPRequest(method: "X", uri: SIPURI(host: "invalid"), headers: response.headers)
        let topVia = Self.stampTopVia(&probe, source: source)
        response.headers = probe.headers
        let wire = response.serialized()
        sendResponseBytes(wire, topVia: topVia, source: source)
    }

    // MARK: RFC 3261 18.2.1 and RFC 3581

    /// Records where the request really came from in its top Via, whatever the client wrote:
    /// `received` is the source address whenever the sent-by host differs from it, the
    /// client wrote a `received` of its own, or `rport` is present (RFC 3581 4); `rport`
    /// present, with or without a value, becomes the source port. Responses are routed by
    /// these values only, so no header a client writes can send our answers elsewhere.
    /// Returns the top Via as it now reads (nil when there is none or it is malformed).
    @discardableResult
    static func stampTopVia(_ request: inout SIPRequest, source: SIPSource) -> SIPVia? {
        guard let index = request.headers.fields.firstIndex(where: { $0.name == .via }) else { return nil }
        let field = request.headers.fields[index].value
        // One Via per field is the common case: no list to split.
        let single = !field.utf8.contains(UInt8(ascii: ","))
        var parts = single ? [] : SIPHeaders.splitList(field)
        guard let first = single ? field : parts.first, var via = SIPVia.parse(first) else { return nil }
        let sentBy = via.host.hasPrefix("[") ? String(via.host.dropFirst().dropLast()) : via.host
        let sourcePort = String(source.remotePort)
        let hadReceived = via.received != nil
        let rportValue = via.parameters.value("rport")
        let setRport = via.hasRport && rportValue != sourcePort
        if setRport { via.parameters.set("rport", sourcePort) }
        let needsReceived = via.hasRport || hadReceived || sentBy.lowercased() != source.remoteHost.lowercased()
        let setReceived = needsReceived && via.received != source.remoteHost
        if setReceived { via.parameters.set("received", source.remoteHost) }
        guard setRport || setReceived else { return via }
        // The usual case (`;rport` without a value, no `received` of the client's own) is an
        // edit of the client's text; anything else is written out again from the parsed Via.
        if single, !hadReceived, rportValue == nil,
           let text = SIPVia.stampedText(first, rport: setRport ? sourcePort : nil, received: setReceived ? source.remoteHost : nil) {
            request.headers.replaceValue(at: index, with: text)
            return via
        }
        if single { parts = [first] }
        parts[0] = Substring(via.description)
        request.headers.replaceValue(at: index, with: parts.joined(separator: ", "))
        return via
    }

    // MARK: Route (RFC 3261 16.4)

    /// Removes a top Route that names this server (baresip sends one on every REGISTER).
    func stripOwnRoute(_ request: inout SIPRequest, source: SIPSource) {
        guard let index = request.headers.fields.firstIndex(where: { $0.name == .route }) else { return }
        let parts = SIPHeaders.splitList(request.headers.fields[index].value)
        guard let first = parts.first, let route = NameAddress.parse(first), namesThisServer(route.uri, source: source) else {
            return
        }
        if parts.count == 1 {
            request.headers.remove(at: index)
        } else {
            request.headers.replaceValue(at: index, with: parts.dropFirst().joined(separator: ", "))
        }
    }

    func namesThisServer(_ uri: SIPURI, source: SIPSource) -> Bool {
        guard uri.isSIP else { return false }
        let host = uri.hostName
        let transport = uri.transport.flatMap { SIPTransportProtocol(token: $0) }
        let defaultPort = uri.isSIPS || transport == .tls ? 5061 : 5060
        let port = uri.port ?? defaultPort
        let ours = listeners
        let portMatches = ours.contains { $0.address.port == port } || source.localPort == port
        guard portMatches else { return false }
        if configuration.localNames.contains(where: { $0.lowercased() == host }) { return true }
        if let local = source.localHost, local.lowercased() == host { return true }
        return ours.contains { $0.address.ipAddress?.lowercased() == host }
    }
}
