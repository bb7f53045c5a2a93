import NIOConcurrencyHelpers
public import NIOCore
public import SIPMessage

/// A request forwarder behind the receive chain (a proxy, RFC 3261 16). The dispatcher
/// hands it every request that no receiver answered and every response whose top Via it
/// did not make itself; the forwarder answers through the ``SIPUpstream`` it is given and
/// sends onwards with ``Dispatcher/sendRequest(_:over:)``.
public protocol SIPForwarder: Sendable {
    /// A request no receiver answered (the chain passed it, or forwarded a rewritten copy).
    /// Returns false to leave it to the dispatcher's own answer (`200` to OPTIONS, else `405`).
    /// An ACK comes here too; its upstream discards whatever is sent on it.
    func forward(_ request: SIPRequest, from source: SIPSource, upstream: SIPUpstream) -> Bool

    /// A response that arrived on `source`; true when it was the forwarder's.
    func receive(_ response: SIPResponse, from source: SIPSource) -> Bool

    /// The connection `flowID` closed: whatever waits for an answer over it will get none.
    func flowClosed(_ flowID: UInt64)

    /// The methods it handles in requests addressed to this server itself (the ones it
    /// leaves to the dispatcher's own answer otherwise), for the `Allow` of those answers.
    /// Default: none; what it forwards to others is not listed (RFC 3261 20.5: `Allow`
    /// names what the element answering supports).
    var allowedMethods: [SIPMethod] { get }
}

extension SIPForwarder {
    /// Nothing to release.
    public func flowClosed(_ flowID: UInt64) {}

    /// No method of its own in requests addressed to this server.
    public var allowedMethods: [SIPMethod] { [] }
}

/// The way back to the sender of a forwarded request: its server transaction (RFC 3261
/// 17.2). A provisional response is remembered, so that a retransmitted request gets it
/// again (17.2.1); a final one completes the transaction and answers later retransmissions.
public struct SIPUpstream: Sendable {
    let dispatcher: Dispatcher
    let key: ServerTransactions.Key?
    /// The request's top Via as the transport layer parsed and stamped it (`received`,
    /// `rport`, RFC 3261 18.2.1, RFC 3581): the one in the request's text.
    public let topVia: SIPVia?
    /// Where the request came from.
    public let source: SIPSource
    let sink: Bool

    /// Sends `response` back the way the request came (18.2.2).
    public func send(_ response: SIPResponse) {
        guard !sink else { return }
        let wire = response.serialized()
        if let key {
            if response.statusCode < 200 {
                dispatcher.transactions.provisional(key, response: wire)
            } else {
                dispatcher.transactions.complete(key, response: wire, timerJ: dispatcher.configuration.timerJ(source.transport),
                                                 now: Dispatcher.monotonicNow())
            }
        }
        if response.statusCode >= 200 { dispatcher.notify(.responseSent(response.statusCode, source.transport)) }
        dispatcher.sendResponseBytes(wire, topVia: topVia, source: source)
    }
}

/// The next hop of a forwarded request.
public enum SIPHop: Sendable, Hashable, CustomStringConvertible {
    /// An open connection (a flow, RFC 5626): the request goes over it or not at all.
    case flow(UInt64)
    /// A UDP datagram to this address and port.
    case udp(host: String, port: Int)
    /// A TCP or TLS connection to this target: an open one to the same peer, or a new one.
    case stream(SendTarget)

    /// The hop as a log names it (`flow 12`, `UDP 192.0.2.1:5060`, `tls example.com:5061`).
    public var description: String {
        switch self {
        case .flow(let id): return "flow \(id)"
        case .udp(let h, let p): return "UDP \(SIPSource.hostPort(h, p))"
        case .stream(let t): return t.description
        }
    }
}

/// Why a forwarded request could not be sent.
public enum SIPHopError: Error, Sendable, Hashable {
    /// The flow is closed (RFC 5626 5.3: `430 Flow Failed` for an outbound contact).
    case flowGone
    /// No leg, no route or no connection (RFC 3261 16.9: `503`).
    case unreachable(String)
}

extension Dispatcher {
    /// Installs the forwarder (one per dispatcher).
    public func setForwarder(_ forwarder: any SIPForwarder) {
        forwarderBox.withLockedValue { $0 = forwarder }
    }

    var forwarder: (any SIPForwarder)? { forwarderBox.withLockedValue { $0 } }

    /// Whether the flow `id` is an open connection, and its transport and peer.
    public func openFlow(_ id: UInt64) -> (transport: SIPTransportProtocol, host: String, port: Int)? {
        guard let f = connections.flow(id), f.channel.isActive else { return nil }
        return (f.transport, f.remoteHost, f.remotePort)
    }

    /// The open connection to a peer (either direction), if there is one.
    public func openFlow(to transport: SIPTransportProtocol, host: String, port: Int) -> UInt64? {
        guard let f = connections.flow(to: transport, host: host, port: port), f.channel.isActive else { return nil }
        return f.id
    }

    /// The address and port a peer reaches this server at over `transport` (our Via sent-by
    /// and Record-Route host on that side): the first configured local name; else the
    /// listener's own address; for a wildcard listener, the local address the peer's
    /// connection arrived at (`local`), loopback for a loopback peer, else the first
    /// interface address of the peer's family. Nil when there is no leg of that transport.
    public func advertisedLeg(_ transport: SIPTransportProtocol, peer: String, local: String? = nil) -> (host: String, port: Int)? {
        guard let listener = legs.withLockedValue({ $0.firstListener[transport] }), let port = listener.port else {
            return nil
        }
        if let name = configuration.localNames.first { return (name, port) }
        if let ip = listener.ip, !Self.isWildcard(ip) { return (Self.unmapped(ip), port) }
        if let local, !Self.isWildcard(local) { return (Self.unmapped(local), port) }
        let p = Self.unmapped(peer)
        let v6 = p.contains(":")
        if p == "::1" || p.hasPrefix("127.") { return (v6 ? "::1" : "127.0.0.1", port) }
        if let own = interfaceAddresses.first(where: { $0.contains(":") == v6 && !$0.hasPrefix("127.") && $0 != "::1"
            && !$0.lowercased().hasPrefix("fe80") }) {
            return (own, port)
        }
        return (v6 ? "::1" : "127.0.0.1", port)
    }

    static func isWildcard(_ ip: String) -> Bool { ip == "0.0.0.0" || ip == "::" }

    /// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, what a dual-stack socket reports)
    /// as the IPv4 address it stands for; anything else unchanged.
    public static func unmapped(_ ip: String) -> String {
        let lower = ip.lowercased()
        guard lower.hasPrefix("::ffff:"), lower.dropFirst(7).contains(".") else { return ip }
        return String(ip.dropFirst(7))
    }

    /// A UDP destination as the leg's socket family wants it: an IPv4 address is written
    /// IPv4-mapped for a dual-stack (IPv6) socket.
    func udpAddress(_ host: String, _ port: Int, for leg: UDPLeg) throws -> SocketAddress {
        if leg.localAddress.protocol == .inet6, !host.contains(":") {
            return try SocketAddress(ipAddress: "::ffff:" + host, port: port)
        }
        return try SocketAddress(ipAddress: host, port: port)
    }

    /// The transports this dispatcher has legs for.
    public var legTransports: Set<SIPTransportProtocol> { availableTransports }

    /// Sends a forwarded request (or an ACK, a CANCEL, a retransmission) over `hop`, as is:
    /// the forwarder has put its own Via on top. A flow that is closed throws
    /// ``SIPHopError/flowGone``; a failure to connect or to route throws ``SIPHopError/unreachable(_:)``.
    public func sendRequest(_ request: SIPRequest, over hop: SIPHop) async throws(SIPHopError) {
        switch hop {
        case .flow, .udp:
            try sendRequestNow(request, over: hop)
        case .stream(let target):
            let wire = request.serialized()
            do {
                let channel = try await streamChannel(to: target)
                // On a new TLS connection the write completes after the handshake, or fails with it:
                // a peer that cannot be verified is a transport error now, not a branch that waits for Timer B.
                try await channel.writeAndFlush(channel.allocator.buffer(bytes: wire)).get()
            } catch {
                throw .unreachable("\(target): \(error)")
            }
        }
    }

    /// Sends over an open flow or as a UDP datagram, at once; ``SIPHop/stream(_:)`` (which may
    /// need a new connection) throws ``SIPHopError/unreachable(_:)`` here: use ``sendRequest(_:over:)``.
    public func sendRequestNow(_ request: SIPRequest, over hop: SIPHop) throws(SIPHopError) {
        switch hop {
        case .flow(let id):
            guard let f = connections.flow(id), f.channel.isActive else { throw .flowGone }
            f.channel.writeAndFlush(f.channel.allocator.buffer(bytes: request.serialized()), promise: nil)
        case .udp(let host, let port):
            guard let leg = udpLeg(localPort: nil) else { throw .unreachable("no UDP leg") }
            guard let address = try? udpAddress(host, port, for: leg) else {
                throw .unreachable("UDP \(SIPSource.hostPort(host, port)): not an IP address")
            }
            leg.send(request.serialized(), to: address)
        case .stream(let target):
            throw .unreachable("\(target): needs a connection")
        }
    }

    /// Sends a response statelessly along its (new) top Via (RFC 3261 16.11, 18.2.2): over
    /// the open connection to the Via's `received`/`rport` address for TCP/TLS, else a
    /// datagram to it. For a response whose transaction is gone (a retransmitted 2xx).
    public func sendResponseStatelessly(_ response: SIPResponse) {
        guard let top = (try? response.headers.topVia) ?? nil, let transport = SIPTransportProtocol(token: top.transport) else {
            count(.responsesUnroutable)
            return
        }
        var host = top.received ?? top.host
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        let rport = top.parameters.value("rport").flatMap { Int($0) }
        let port = rport ?? top.port ?? (transport == .tls ? 5061 : 5060)
        let wire = response.serialized()
        if transport.isReliable {
            guard let f = connections.flow(to: transport, host: host, port: port), f.channel.isActive else {
                count(.responsesUnroutable)
                return
            }
            f.channel.writeAndFlush(f.channel.allocator.buffer(bytes: wire), promise: nil)
            return
        }
        guard let leg = udpLeg(localPort: nil), let address = try? udpAddress(host, port, for: leg) else {
            count(.responsesUnroutable)
            return
        }
        leg.send(wire, to: address)
    }
}
