import SIPMessage
@testable import SIPRegistrar
import SIPTestSupport
import Testing

/// Rows read from a shared store before a local commit finished must not replace what that commit did.
@Suite struct ReplicationReadTests {
    @Test func rowsReadBeforeALocalCommitFinishedAreRefused() async throws {
        let clock = ManualRegistrarClock()
        let registrar = try Registrar(configuration: RegistrarConfiguration(), store: InMemoryBindingStore(), clock: clock)
        let now = clock.nowMilliseconds()
        let stale = Binding(aor: "alice@example.com", uri: "sip:alice@198.51.100.2", scheme: .sip, expiresAt: now + 600_000,
                            updatedAt: now, callID: "c", cseq: 1, transport: .udp, sourceHost: "198.51.100.2", sourcePort: 5060,
                            node: "node-b")
        // The rows are read, then a local REGISTER commits, then the rows arrive.
        registrar.beginReplicationRead()
        #expect(try await registrar.send(RegisterBuilder(), from: udp)?.statusCode == 200)
        #expect(!registrar.replaceBindings(of: "alice@example.com", with: [stale], localNode: "node-a"))
        #expect(registrar.query("sip:alice@example.com") == ["sip:alice@192.0.2.10:5060"], "the local commit was overwritten")
        // Read again (after the commit): accepted.
        registrar.beginReplicationRead()
        #expect(registrar.replaceBindings(of: "alice@example.com", with: [stale], localNode: "node-a"))
        #expect(registrar.query("sip:alice@example.com") == ["sip:alice@198.51.100.2"])
    }
}
