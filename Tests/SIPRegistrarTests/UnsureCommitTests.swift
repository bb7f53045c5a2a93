import SIPMessage
@testable import SIPRegistrar
import SIPTestSupport
import Testing

/// A store that fails the commits it is told to fail and records the ones it accepts.
final class FailingThenRecordingStore: BindingStore {
    let failing = LockedState(false)
    let accepted = LockedState<[[BindingChange]]>([])

    struct Down: Error {}

    func loadAll() async throws -> [Binding] { [] }

    func apply(_ changes: [BindingChange]) async throws {
        if failing.withLock({ $0 }) { throw Down() }
        accepted.withLock { $0.append(changes) }
    }
}

/// After a failed commit the store may hold a binding that memory does not (a shared store can
/// land a commit after its REGISTER was answered 503): an unregister must reach the store.
@Suite struct UnsureCommitTests {
    @Test func anUnregisterAfterAFailedCommitIsWrittenAll() async throws {
        let store = FailingThenRecordingStore()
        let clock = ManualRegistrarClock()
        let registrar = try Registrar(configuration: RegistrarConfiguration(), store: store, clock: clock)
        var b = RegisterBuilder()
        b.contacts = ["<sip:alice@192.0.2.10:5060>"]
        store.failing.withLock { $0 = true }
        #expect(try await registrar.send(b, from: udp)?.statusCode == 503)
        #expect(registrar.query("sip:alice@example.com").isEmpty, "memory was not rolled back")
        store.failing.withLock { $0 = false }

        // Expires: 0 for the contact: nothing in memory, yet a removal is committed.
        var off = b
        off.cseq = 2
        off.expires = 0
        #expect(try await registrar.send(off, from: udp)?.statusCode == 200)
        #expect(store.accepted.withLock { $0 } == [[.remove(aor: "alice@example.com", uri: "sip:alice@192.0.2.10:5060")]])

        // "*" likewise.
        var all = b
        all.cseq = 3
        all.contacts = ["*"]
        all.expires = 0
        #expect(try await registrar.send(all, from: udp)?.statusCode == 200)
        #expect(store.accepted.withLock { $0.last } == [.remove(aor: "alice@example.com", uri: "sip:alice@192.0.2.10:5060")])
    }

    @Test func withoutAFailedCommitAnUnregisterOfNothingWritesNothing() async throws {
        let store = FailingThenRecordingStore()
        let clock = ManualRegistrarClock()
        let registrar = try Registrar(configuration: RegistrarConfiguration(), store: store, clock: clock)
        var b = RegisterBuilder()
        b.expires = 0
        #expect(try await registrar.send(b, from: udp)?.statusCode == 200)
        #expect(store.accepted.withLock { $0 }.isEmpty)

        // A failure, then the window passes: back to writing nothing.
        var on = RegisterBuilder()
        on.cseq = 2
        store.failing.withLock { $0 = true }
        #expect(try await registrar.send(on, from: udp)?.statusCode == 503)
        store.failing.withLock { $0 = false }
        clock.advance(seconds: Double(Registrar.unsureMilliseconds / 1000) + 1)
        var off = RegisterBuilder()
        off.cseq = 3
        off.expires = 0
        #expect(try await registrar.send(off, from: udp)?.statusCode == 200)
        #expect(store.accepted.withLock { $0 }.isEmpty)
    }
}
