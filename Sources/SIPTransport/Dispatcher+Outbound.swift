import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
public import SIPMessage

extension Dispatcher {
    // MARK: Responses (RFC 3261 18.2.2, RFC 3581)

    /// Sends a response back the way its request came: over the same connection on
    /// TCP/TLS (or a new one to the Via's received/sent-by if it is gone, TLS when the
    /// Via says TLS); on UDP to `received` and `rport` (or the sent-by port).
    public func deliver(_ response: SIPResponse, to source: SIPSource) {
        sendResponseBytes(response.serialized(), topVia: (try? response.headers.topVia) ?? nil, source: source)
    }

    /// Sends response bytes along the route that `topVia` (the request's, as stamped) and the source give.
    func sendResponseBytes(_ wire: [UInt8], topVia: SIPVia?, source: SIPSource) {
        if source.transport.isReliable, let id = source.flowID, let flow = connections.flow(id), flow.channel.isActive {
            let buffer = flow.channel.allocator.buffer(bytes: wire)
            flow.channel.writeAndFlush(buffer, promise: nil)
            return
        }
        guard let top = topVia else {
            count(.responsesUnroutable)
            return
        }
        let viaTransport = SIPTransportProtocol(token: top.transport) ?? source.transport
        let sentByHost = top.host.hasPrefix("[") ? String(top.host.dropFirst().dropLast()) : top.host
        let host = top.parameters.value("maddr") ?? top.received ?? sentByHost
        if viaTransport.isReliable {
            let port = top.port ?? (viaTransport == .tls ? 5061 : 5060)
            Task {
                do {
                    let channel = try await self.streamChannel(to: SendTarget(transport: viaTransport, host: host, port: port))
                    channel.writeAndFlush(channel.allocator.buffer(bytes: wire), promise: nil)
                } catch {
                    self.count(.responsesUnroutable)
                    self.logger.debug("response undeliverable", metadata: ["net.peer": "\(host):\(port)", "error": "\(error)"])
                }
            }
            return
        }
        let port = top.rport ?? top.port ?? 5060
        guard let leg = udpLeg(localPort: source.localPort), let address = try? SocketAddress(ipAddress: host, port: port) else {
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
