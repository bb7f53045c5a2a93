import NIOConcurrencyHelpers
import NIOCore
import SIPMessage

/// Open TCP/TLS connections (flows): by id, by remote endpoint for reuse in both
/// directions, and counted per remote IP for the limits.
final class ConnectionTable: Sendable {
    /// Kept small: every idle softphone connection has one (with dictionary slack, about
    /// twice its size). The TLS peer's identity travels in each message's `SIPSource`.
    struct Flow: Sendable {
        var id: UInt64
        var channel: any Channel
        var transport: SIPTransportProtocol
        var remoteHost: String
        var remotePort: Int
    }

    /// A remote endpoint, for reusing a connection in both directions. A struct, not a
    /// `"TLS|host|port"` string: that string is longer than Swift's 15 inline bytes, so it
    /// was one more allocation per connection and per lookup.
    struct Endpoint: Hashable {
        var transport: SIPTransportProtocol
        var host: String
        var port: Int

        init(_ transport: SIPTransportProtocol, _ host: String, _ port: Int) {
            self.transport = transport
            // Hosts are compared case-insensitively; IP literals (what connections have) are lowercase already.
            self.host = host.utf8.contains { $0 >= 0x41 && $0 <= 0x5A } ? host.lowercased() : host
            self.port = port
        }
    }

    enum Admission: Equatable {
        case admitted
        case totalLimit
        case perIPLimit
    }

    private struct Storage {
        var flows: [UInt64: Flow] = [:]
        var byEndpoint: [Endpoint: UInt64] = [:]
        var perIP: [String: Int] = [:]
        var reserved = 0
    }

    private let storage = NIOLockedValueBox(Storage())
    private let nextID = NIOLockedValueBox<UInt64>(0)

    func makeID() -> UInt64 {
        nextID.withLockedValue { n in
            n += 1
            return n
        }
    }

    /// Reserves a slot for a connection from `ip`, or says which limit refuses it.
    /// The per-IP count keys an IPv6 peer by its /64 (``SourceKey/limitKey(forIP:)``).
    func admit(ip address: String, maxTotal: Int, maxPerIP: Int) -> Admission {
        let ip = SourceKey.limitKey(forIP: address)
        return storage.withLockedValue { s in
            if s.reserved >= maxTotal { return .totalLimit }
            if s.perIP[ip, default: 0] >= maxPerIP { return .perIPLimit }
            s.reserved += 1
            s.perIP[ip, default: 0] += 1
            return .admitted
        }
    }

    /// Gives back a slot taken by `admit`.
    func release(ip address: String) {
        let ip = SourceKey.limitKey(forIP: address)
        storage.withLockedValue { s in
            s.reserved -= 1
            let left = s.perIP[ip, default: 1] - 1
            s.perIP[ip] = left > 0 ? left : nil
        }
    }

    func register(_ flow: Flow) {
        storage.withLockedValue { s in
            s.flows[flow.id] = flow
            s.byEndpoint[Endpoint(flow.transport, flow.remoteHost, flow.remotePort)] = flow.id
        }
    }

    func remove(_ id: UInt64) {
        storage.withLockedValue { s in
            guard let flow = s.flows.removeValue(forKey: id) else { return }
            let key = Endpoint(flow.transport, flow.remoteHost, flow.remotePort)
            if s.byEndpoint[key] == id { s.byEndpoint[key] = nil }
        }
    }

    func flow(_ id: UInt64) -> Flow? { storage.withLockedValue { $0.flows[id] } }

    func flow(to transport: SIPTransportProtocol, host: String, port: Int) -> Flow? {
        storage.withLockedValue { s in
            s.byEndpoint[Endpoint(transport, host, port)].flatMap { s.flows[$0] }
        }
    }

    var count: Int { storage.withLockedValue { $0.flows.count } }

    func count(of transport: SIPTransportProtocol) -> Int {
        storage.withLockedValue { $0.flows.values.filter { $0.transport == transport }.count }
    }

    func allChannels() -> [any Channel] { storage.withLockedValue { $0.flows.values.map(\.channel) } }
}
