import SIPMessage
@testable import SIPRegistrar
import SIPTestSupport
import Testing

let udp = SIPSource(transport: .udp, remoteHost: "192.0.2.10", remotePort: 5060)
let tcp = SIPSource(transport: .tcp, remoteHost: "192.0.2.10", remotePort: 40000, flowID: 7)
let tls = SIPSource(transport: .tls, remoteHost: "192.0.2.10", remotePort: 40001, flowID: 8,
                    tlsPeer: SIPTLSPeerIdentity(sipURIs: ["sip:alice@example.com"], verified: true))

extension Registrar {
    /// Sends a REGISTER and returns the response (nil when ignored).
    func send(_ b: RegisterBuilder, from source: SIPSource = udp) async throws -> SIPResponse? {
        let outcome = await receive(try b.request(), from: source)
        if case .respond(let r) = outcome { return r }
        return nil
    }
}

extension SIPResponse {
    /// The Contact values: URI text and expires.
    var contactList: [(uri: String, expires: Int?)] {
        guard case .contacts(let list)? = try? headers.contact else { return [] }
        return list.map { ($0.uri.description, $0.expires) }
    }
}

/// A store whose failures are switched on and off by the test.
final class FlakyStore: BindingStore {
    let inner = InMemoryBindingStore()
    let failing = LockedState(false)
    func loadAll() async throws -> [Binding] { try await inner.loadAll() }
    func apply(_ changes: [BindingChange]) async throws {
        if failing.withLock({ $0 }) { throw StoreDown() }
        try await inner.apply(changes)
    }
    struct StoreDown: Error {}
}

/// A timer service that runs nothing until the test fires it.
final class ManualTimers: SIPTimerScheduler {
    struct Timer: SIPScheduledTimer {
        let id: Int
        let owner: ManualTimers
        func cancel() { owner.pending.withLock { $0.removeValue(forKey: id) } }
    }
    let pending = LockedState<[Int: (Duration, @Sendable () -> Void)]>([:])
    let counter = LockedState(0)

    func schedule(after delay: Duration, _ body: @escaping @Sendable () -> Void) -> any SIPScheduledTimer {
        let id = counter.withLock { n -> Int in
            n += 1
            return n
        }
        pending.withLock { $0[id] = (delay, body) }
        return Timer(id: id, owner: self)
    }

    var delays: [Duration] { pending.withLock { $0.values.map(\.0) } }

    func fireAll() {
        let bodies = pending.withLock { p -> [@Sendable () -> Void] in
            let b = p.values.map(\.1)
            p.removeAll()
            return b
        }
        for b in bodies { b() }
    }
}
