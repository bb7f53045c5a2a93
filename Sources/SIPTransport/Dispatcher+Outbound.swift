import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
public import SIPMessage

extension Dispatcher {
    // MARK: Responses (RFC 3261 18.2.2, RFC 3581)

    /// Sends a response back the way its request came: over the same connection on
    /// TCP/TLS (or, if it is gone, a new connection of the same transport to the
    /// request's source address); on UDP over UDP to the source address.
    public func deliver(_ response: SIPResponse, to source: SIPSource) {
        sendResponseBytes(response.serialized(), topVia: (try? response.headers.topVia) ?? nil, source: source)
    }

    /// Sends response bytes to where the request came from (RFC 3261 18.2.2, RFC 3581).
    ///
    /// Only the source decides the address and the transport: a request that came over UDP
    /// is answered over UDP, never over a connection its Via asks for; `maddr` is not
    /// followed (no multicast responses here); `received`, which the client cannot set
    /// (``stampTopVia(_:source:)`` overwrites it), always equals the source address. From the
    /// Via only the port is taken, as 18.2.2 says: `rport` (then the real source port) or the
    /// sent-by port.
    func sendResponseBytes(_ wire: [UInt8], topVia: SIPVia?, source: SIPSource) {
        if source.transport.isReliable {
            if let id = source.flowID, let flow = connections.flow(id), flow.channel.isActive {
                let buffer = flow.channel.allocator.buffer(bytes: wire)
                flow.channel.writeAndFlush(buffer, promise: nil)
                return
            }
            // The connection is gone: a new one to the source address, same transport, port
            // from sent-by (18.2.2), within the connection limits.
            let port = topVia?.port ?? (source.transport == .tls ? 5061 : 5060)
            let target = SendTarget(transport: source.transport, host: source.remoteHost, port: port)
            Task {
                do {
                    let channel = try await self.streamChannel(to: target)
                    channel.writeAndFlush(channel.allocator.buffer(bytes: wire), promise: nil)
                } catch {
                    self.count(.responsesUnroutable)
                    self.logger.debug("response undeliverable", metadata: ["net.peer": "\(target)", "error": "\(error)"])
                }
            }
            return
        }
        let port: Int
        if let top = topVia {
            port = top.hasRport ? source.remotePort : (top.port ?? 5060)
        } else {
            // No readable Via: the answer (a 400) goes to where the datagram came from.
            port = source.remotePort
        }
        guard let leg = udpLeg(localPort: source.localPort), let address = try? SocketAddress(ipAddress: source.remoteHost, port: port) else {
            count(.responsesUnroutable)
            return
        }
        leg.send(wire, to: address)
    }

    func udpLeg(localPort: Int?) -> UDPLeg? {
        legs.withLockedValue { l in
            l.udp.first { $0.localAddress.port == localPort } ?? l.udp.first
        }
    }

    // MARK: Requests

    /// Sends a request to `uri` and waits for its final response (a client non-INVITE
    /// transaction: Timer E retransmissions on UDP, Timer F timeout). The leg is chosen by
    /// ``LegSelection``: `sips:` only over TLS. An open connection to the same peer (also
    /// one the peer opened, or the given `flow`) is reused before a new one is opened.
    public func send(_ request: SIPRequest, to uri: SIPURI, flow: UInt64? = nil) async throws -> SIPResponse {
        let size = request.serialized().count + 120
        let target = try LegSelection.select(uri, available: availableTransports, messageSize: size)
        var out = request
        let branch = SIPVia.magicCookie + SIPResponse.randomTag() + SIPResponse.randomTag()
        if !out.headers.contains(.maxForwards) { out.headers.add(.maxForwards, "70") }

        if target.transport == .udp {
            guard let leg = udpLeg(localPort: nil) else { throw LegSelectionError.noLeg(.udp) }
            let address: SocketAddress
            do {
                address = try SocketAddress.makeAddressResolvingHost(target.host, port: target.port)
            } catch {
                throw DispatcherError.unroutable("\(target): \(error)")
            }
            let sentBy = advertisedHost(leg.localAddress)
            out.headers.prepend(.via, "SIP/2.0/UDP \(sentBy):\(leg.localAddress.port ?? 5060);branch=\(branch);rport")
            let wire = out.serialized()
            return try await clientTransactions.run(branch: branch, dispatcher: self, reliable: false) {
                leg.send(wire, to: address)
            }
        }

        let channel: any Channel
        if let flow, let f = connections.flow(flow), f.channel.isActive, f.transport == target.transport {
            channel = f.channel
        } else {
            channel = try await streamChannel(to: target)
        }
        let local = channel.localAddress
        let sentBy = local.map { advertisedHost($0) } ?? "invalid"
        out.headers.prepend(.via, "SIP/2.0/\(target.transport.rawValue) \(sentBy):\(local?.port ?? 0);branch=\(branch);rport")
        let wire = out.serialized()
        return try await clientTransactions.run(branch: branch, dispatcher: self, reliable: true) {
            channel.writeAndFlush(channel.allocator.buffer(bytes: wire), promise: nil)
        }
    }

    /// An open connection to the target, or a new one.
    func streamChannel(to target: SendTarget) async throws -> any Channel {
        if let f = connections.flow(to: target.transport, host: target.host, port: target.port), f.channel.isActive {
            return f.channel
        }
        // A WebSocket peer is reached only over the connection it opened (RFC 7118 5): this
        // server opens none.
        if target.transport.isWebSocket { throw DispatcherError.connectFailed("\(target): WebSocket peers are reached only over their own connection") }
        guard let leg = legs.withLockedValue({ $0.stream.first { $0.transport == target.transport } }) else {
            throw LegSelectionError.noLeg(target.transport)
        }
        return try await leg.connect(host: target.host, port: target.port)
    }

    func advertisedHost(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress else { return configuration.localNames.first ?? "127.0.0.1" }
        if ip == "0.0.0.0" || ip == "::" { return configuration.localNames.first ?? "127.0.0.1" }
        return ip.contains(":") ? "[\(ip)]" : ip
    }
}

/// Client non-INVITE transactions (RFC 3261 17.1.2): matched by branch, retransmitted
/// with Timer E on UDP, given up after Timer F.
final class ClientTransactions: Sendable {
    private let pending = NIOLockedValueBox<[String: CheckedContinuation<SIPResponse, any Error>]>([:])

    func run(branch: String, dispatcher: Dispatcher, reliable: Bool, transmit: @escaping @Sendable () -> Void) async throws -> SIPResponse {
        let t1 = dispatcher.configuration.t1
        let t2 = dispatcher.configuration.t2
        let loop = dispatcher.group.next()
        return try await withCheckedThrowingContinuation { continuation in
            pending.withLockedValue { $0[branch] = continuation }
            transmit()
            // Timer F.
            loop.scheduleTask(in: .nanoseconds((t1 * 64).nanoseconds)) {
                self.finish(branch, .failure(DispatcherError.timeout))
            }
            guard !reliable else { return }
            // Timer E: T1, 2·T1, ... capped at T2.
            @Sendable func retransmit(after interval: Duration) {
                loop.scheduleTask(in: .nanoseconds(interval.nanoseconds)) {
                    guard self.isPending(branch) else { return }
                    transmit()
                    retransmit(after: min(interval * 2, t2))
                }
            }
            retransmit(after: t1)
        }
    }

    func receive(_ response: SIPResponse) {
        guard response.statusCode >= 200, let branch = (try? response.headers.topVia)??.branch else { return }
        finish(branch, .success(response))
    }

    func isPending(_ branch: String) -> Bool { pending.withLockedValue { $0[branch] != nil } }

    private func finish(_ branch: String, _ result: Result<SIPResponse, any Error>) {
        guard let c = pending.withLockedValue({ $0.removeValue(forKey: branch) }) else { return }
        c.resume(with: result)
    }

    func failAll(_ error: any Error) {
        let all = pending.withLockedValue { p -> [CheckedContinuation<SIPResponse, any Error>] in
            let v = Array(p.values)
            p.removeAll()
            return v
        }
        for c in all { c.resume(throwing: error) }
    }
}
