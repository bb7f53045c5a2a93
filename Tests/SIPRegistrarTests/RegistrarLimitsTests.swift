import SIPMessage
@testable import SIPRegistrar
import SIPTestSupport
import Testing

/// Bounded work per REGISTER and bounded memory in all.
@Suite struct RegistrarLimitsTests {
    let clock = ManualRegistrarClock()

    func registrar(_ c: RegistrarConfiguration) throws -> Registrar {
        try Registrar(configuration: c, store: InMemoryBindingStore(), clock: clock)
    }

    func work(_ body: () async throws -> Void) async throws -> Int {
        let counter = WorkCounter()
        try await WorkCounter.$current.withValue(counter) { try await body() }
        return counter.value
    }

    @Test func moreContactsThanTheAORMayHoldAreRefusedBeforeAnyMatching() async throws {
        let r = try registrar(RegistrarConfiguration(minExpires: 60, maxExpires: 3600, maxContactsPerAOR: 10))
        var b = RegisterBuilder()
        // 2,200 contacts, 100 to a Contact line (a 40 KB REGISTER, as fits one TCP message).
        let all = (0..<2_200).map { "<sip:a@192.0.2.\($0 % 250):\(5000 + $0)>" }
        b.contacts = stride(from: 0, to: all.count, by: 100).map { all[$0..<min($0 + 100, all.count)].joined(separator: ", ") }
        var response: SIPResponse?
        let units = try await work { response = try await r.send(b) }
        #expect(response?.statusCode == 403 && response?.reasonPhrase == "Too Many Registrations")
        #expect(units == 0, "contacts were matched before the limit was checked")
        #expect(r.bindingCount == 0)
    }

    @Test func noRequestMayCarryMoreThanTheHardCeiling() async throws {
        // Even without a per-AOR limit.
        let r = try registrar(RegistrarConfiguration(minExpires: 60, maxExpires: 3600, maxContactsPerAOR: nil))
        var b = RegisterBuilder()
        b.contacts = (0...RegistrarConfiguration.maxContactsPerRequest).map { "<sip:a@h\($0)>" }
        #expect(try await r.send(b)?.statusCode == 403)
        b.contacts.removeLast()
        #expect(try await r.send(b)?.statusCode == 200)
        #expect(r.bindingCount == RegistrarConfiguration.maxContactsPerRequest)
    }

    @Test func matchingIsLinearInTheStoredBindings() async throws {
        // No per-AOR limit: an AOR may hold many bindings; each new REGISTER must not compare
        // every contact with every stored binding.
        func cost(stored: Int) async throws -> Int {
            let r = try registrar(RegistrarConfiguration(minExpires: 60, maxExpires: 3600, maxContactsPerAOR: nil))
            var b = RegisterBuilder()
            var n = 0
            while n < stored {
                b.contacts = (n..<(n + 64)).map { "<sip:a@192.0.2.1:\(10_000 + $0);transport=tcp>" }
                b.cseq += 1
                #expect(try await r.send(b)?.statusCode == 200)
                n += 64
            }
            b.contacts = (0..<64).map { "<sip:a@192.0.2.2:\(10_000 + $0)>" }
            b.cseq += 1
            var status: Int?
            let units = try await work { status = try await r.send(b)?.statusCode }
            #expect(status == 200)
            return units
        }
        let small = try await cost(stored: 640)
        let large = try await cost(stored: 2_560)
        #expect(small > 0)
        // Four times the stored bindings: at most about four times the work (not 64 × stored comparisons).
        #expect(large <= small * 5, "\(small) → \(large)")
        #expect(large < 64 * 2_560 / 4, "\(large)")
    }

    @Test func equivalentURIsStillMatch() async throws {
        let r = try registrar(RegistrarConfiguration(minExpires: 60, maxExpires: 3600))
        var b = RegisterBuilder()
        b.contacts = ["<sip:alice@EXAMPLE.org:5060;transport=TCP;x=1>"]
        #expect(try await r.send(b)?.statusCode == 200)
        b.contacts = ["<sip:alice@example.org:5060;transport=tcp>;expires=0"]
        b.cseq = 2
        let response = try #require(try await r.send(b))
        #expect(response.statusCode == 200 && response.contactList.isEmpty)
        #expect(r.bindingCount == 0)
    }

    @Test func theLocationServiceIsBoundedAndRefreshesStillWork() async throws {
        let r = try registrar(RegistrarConfiguration(minExpires: 60, maxExpires: 3600, maxContactsPerAOR: nil,
                                                     maxBindings: 3, maxAORs: 2))
        var b = RegisterBuilder()
        b.contacts = ["<sip:a@h1>", "<sip:a@h2>"]
        #expect(try await r.send(b)?.statusCode == 200)
        // A third binding for the same AOR fits; a fourth does not.
        b.contacts = ["<sip:a@h3>"]
        b.cseq = 2
        #expect(try await r.send(b)?.statusCode == 200)
        b.contacts = ["<sip:a@h4>"]
        b.cseq = 3
        let full = try #require(try await r.send(b))
        #expect(full.statusCode == 503 && full.reasonPhrase == "Location Service Full")
        #expect(full.headers[.retryAfter] != nil)
        // Refreshing what is stored always works.
        b.contacts = ["<sip:a@h1>", "<sip:a@h2>", "<sip:a@h3>"]
        b.cseq = 4
        #expect(try await r.send(b)?.statusCode == 200)
        // Removing makes room again.
        b.contacts = ["<sip:a@h3>;expires=0", "<sip:a@h4>"]
        b.cseq = 5
        #expect(try await r.send(b)?.statusCode == 200)
        #expect(r.bindingCount == 3)
        // Another AOR: bindings are full, so refused too; with room, the AOR limit applies.
        var other = RegisterBuilder()
        other.to = "<sip:bob@example.com>"
        other.callID = "bob"
        other.contacts = ["<sip:b@h1>"]
        #expect(try await r.send(other)?.statusCode == 503)
        let r2 = try registrar(RegistrarConfiguration(minExpires: 60, maxExpires: 3600, maxBindings: 100, maxAORs: 1))
        #expect(try await r2.send(b)?.statusCode == 200)
        #expect(try await r2.send(other)?.statusCode == 503)
        #expect(r2.aorCount == 1)
    }
}
