import SIPMessage
@testable import SIPRegistrar
import SIPTestSupport
import Testing

/// A store whose commits wait until the test lets them go.
final class GatedStore: BindingStore {
    let inner = InMemoryBindingStore()
    let gate = LockedState<[CheckedContinuation<Void, Never>]>([])
    let gated = LockedState(false)

    func loadAll() async throws -> [Binding] { try await inner.loadAll() }

    func apply(_ changes: [BindingChange]) async throws {
        if gated.withLock({ $0 }) {
            await withCheckedContinuation { c in gate.withLock { $0.append(c) } }
        }
        try await inner.apply(changes)
    }

    var waiting: Int { gate.withLock { $0.count } }

    func release() {
        let all = gate.withLock { g -> [CheckedContinuation<Void, Never>] in
            defer { g = [] }
            return g
        }
        for c in all { c.resume() }
    }
}

/// What a node sharing a store does with other nodes' changes.
@Suite struct ReplicationTests {
    func binding(_ user: String, uri: String, node: String?, expiresIn seconds: Int64 = 600) -> Binding {
        let now = ManualRegistrarClock().nowMilliseconds()
        return Binding(aor: "\(user)@example.com", uri: uri, scheme: .sip, expiresAt: now + seconds * 1000, updatedAt: now,
                       callID: "c", cseq: 1, transport: .tcp, sourceHost: "192.0.2.1", sourcePort: 5060, node: node)
    }

    @Test func replacedBindingsAreServedAndLocalFlowsKept() async throws {
        let registrar = try Registrar(configuration: RegistrarConfiguration(), clock: ManualRegistrarClock())
        // A local registration over a connection (flow 8).
        var b = RegisterBuilder()
        b.contacts = ["<sip:alice@192.0.2.10:40001;transport=tcp>"]
        #expect(try await registrar.send(b, from: tcp)?.statusCode == 200)
        #expect(registrar.isFlowInUse(7))
        // The store says: alice's own row (written by this node) plus one from node-b.
        let mine = binding("alice", uri: "sip:alice@192.0.2.10:40001;transport=tcp", node: "node-a")
        let theirs = binding("alice", uri: "sip:alice@198.51.100.2", node: "node-b")
        #expect(registrar.replaceBindings(of: "alice@example.com", with: [mine, theirs], localNode: "node-a"))
        #expect(registrar.query("sip:alice@example.com").count == 2)
        #expect(registrar.isFlowInUse(7), "the local connection was forgotten")
        let shown = registrar.lookup("sip:alice@example.com")
        #expect(shown.first { $0.uri.contains("198.51.100.2") }?.node == "node-b")
        #expect(shown.first { $0.uri.contains("40001") }?.node == nil)
        // Another node removed everything.
        #expect(registrar.replaceBindings(of: "alice@example.com", with: [], localNode: "node-a"))
        #expect(registrar.query("sip:alice@example.com").isEmpty)
        #expect(!registrar.isFlowInUse(7))
        #expect(registrar.bindingCount == 0)
    }

    @Test func aReloadNeverOverwritesACommitInFlight() async throws {
        let store = GatedStore()
        let registrar = try Registrar(configuration: RegistrarConfiguration(), store: store, clock: ManualRegistrarClock())
        store.gated.withLock { $0 = true }
        let pending = Task { try await registrar.send(RegisterBuilder()) }
        while store.waiting == 0 { await Task.yield() }
        // A snapshot taken before the commit lands must not erase the binding being committed.
        #expect(!registrar.replaceBindings(of: "alice@example.com", with: [], localNode: "node-a"))
        #expect(registrar.replaceAllBindings(with: [], localNode: "node-a") == ["alice@example.com"])
        store.release()
        #expect(try await pending.value?.statusCode == 200)
        #expect(registrar.query("sip:alice@example.com").count == 1)
        // Once committed, a reload applies again.
        #expect(registrar.replaceBindings(of: "alice@example.com", with: [], localNode: "node-a"))
    }

    @Test func expiryRemovesOnlyWhatWasNotRefreshed() async throws {
        let store = InMemoryBindingStore()
        let fresh = binding("bob", uri: "sip:bob@192.0.2.7", node: "node-b", expiresIn: 600)
        try await store.apply([.upsert(fresh)])
        // Another node's expiry for an older expiry time leaves the refreshed row alone...
        try await store.apply([.expired(aor: fresh.aor, uri: fresh.uri, at: fresh.expiresAt - 60_000)])
        #expect(store.count == 1)
        // ...and removes it once the expiry it saw is the stored one.
        try await store.apply([.expired(aor: fresh.aor, uri: fresh.uri, at: fresh.expiresAt)])
        #expect(store.count == 0)
    }
}
