import SIPMessage
@testable import SIPRegistrar
import SIPTestSupport
import Testing

/// Random REGISTER sequences (contacts, expiries, Call-IDs, CSeqs, wildcards, clock
/// jumps) must leave the registrar in the same state as this small reference model.
@Suite struct RegistrarModelTests {
    struct ModelBinding: Equatable {
        var callID: String
        var cseq: UInt32
        var expiresAt: Int64
    }

    /// The reference: RFC 3261 10.3 written as plainly as possible.
    struct Model {
        let minExpires = 60
        let maxExpires = 3600
        var bindings: [String: ModelBinding] = [:]  // contact URI -> binding (one AOR)

        mutating func register(contacts: [(String, Int?)]?, wildcard: Bool, expiresHeader: Int?, callID: String,
                               cseq: UInt32, now: Int64) -> Int {
            bindings = bindings.filter { $0.value.expiresAt > now }
            if wildcard {
                guard expiresHeader == 0 else { return 400 }
                for b in bindings.values where b.callID == callID && cseq <= b.cseq { return 400 }
                bindings = [:]
                return 200
            }
            guard let contacts else { return 200 }
            // RFC 5630: a sips: contact only together with other sips: contacts.
            if contacts.contains(where: { $0.0.hasPrefix("sips:") }), !contacts.allSatisfy({ $0.0.hasPrefix("sips:") }) {
                return 400
            }
            var planned: [(String, Int)] = []
            for (uri, param) in contacts {
                var e = param ?? expiresHeader ?? min(3600, maxExpires)
                if e > maxExpires { e = maxExpires }
                if e != 0 && e < minExpires { return 423 }
                planned.append((uri, e))
            }
            for (uri, _) in planned {
                if let old = bindings[uri], old.callID == callID, cseq <= old.cseq { return 400 }
            }
            for (uri, e) in planned {
                if e == 0 {
                    bindings[uri] = nil
                } else {
                    bindings[uri] = ModelBinding(callID: callID, cseq: cseq, expiresAt: now + Int64(e) * 1000)
                }
            }
            return 200
        }
    }

    @Test(arguments: 0..<20)
    func randomSequencesMatchTheModel(seed: Int) async throws {
        var rng = SeededRandom(seed: UInt64(seed) &* 0x9E37_79B9 &+ 1)
        let clock = ManualRegistrarClock()
        let registrar = try Registrar(configuration: RegistrarConfiguration(minExpires: 60, maxExpires: 3600), clock: clock)
        var model = Model()
        let uris = ["sip:a@h1", "sip:a@h2", "sip:a@h3:5070", "sips:a@h4"]
        let expiryChoices: [Int?] = [nil, 0, 10, 60, 300, 5000]
        for step in 0..<150 {
            // Clock jumps, sometimes past expiries.
            switch rng.next() % 4 {
            case 0: clock.advance(seconds: Double(rng.next() % 4000))
            case 1: clock.advance(seconds: Double(rng.next() % 10))
            default: break
            }
            if rng.next() % 10 == 0 { _ = await registrar.expire() }
            let wildcard = rng.next() % 12 == 0
            let fetch = !wildcard && rng.next() % 10 == 0
            var contacts: [(String, Int?)] = []
            if !wildcard && !fetch {
                let n = 1 + Int(rng.next() % 2)
                for _ in 0..<n {
                    let uri = uris[Int(rng.next() % UInt64(uris.count))]
                    guard !contacts.contains(where: { $0.0 == uri }) else { continue }
                    contacts.append((uri, rng.next() % 2 == 0 ? expiryChoices[Int(rng.next() % 6)] : nil))
                }
            }
            let expiresHeader = wildcard ? (rng.next() % 3 == 0 ? 60 : 0) : expiryChoices[Int(rng.next() % 6)]
            let callID = ["c1", "c2"][Int(rng.next() % 2)]
            let cseq = UInt32(1 + rng.next() % 6)

            var b = RegisterBuilder()
            b.requestURI = "sips:example.com"
            b.to = "<sip:alice@example.com>"
            b.callID = callID
            b.cseq = cseq
            b.expires = expiresHeader
            b.contacts = wildcard ? ["*"] : contacts.map { c in "<\(c.0)>" + (c.1.map { ";expires=\($0)" } ?? "") }
            let now = clock.nowMilliseconds()
            let expected = model.register(contacts: fetch ? nil : contacts, wildcard: wildcard, expiresHeader: expiresHeader,
                                          callID: callID, cseq: cseq, now: now)
            let response = try #require(try await registrar.send(b, from: tls))
            #expect(response.statusCode == expected, "seed \(seed) step \(step)")

            let actual = Dictionary(uniqueKeysWithValues: registrar.bindings(ofAOR: "alice@example.com").map { ($0.uri, $0) })
            let live = model.bindings.filter { $0.value.expiresAt > now }
            #expect(Set(actual.keys) == Set(live.keys), "seed \(seed) step \(step)")
            for (uri, m) in live {
                #expect(actual[uri]?.expiresAt == m.expiresAt && actual[uri]?.cseq == m.cseq && actual[uri]?.callID == m.callID,
                        "seed \(seed) step \(step) \(uri)")
            }
            // Lookup filtering agrees with the model too.
            #expect(Set(registrar.query("sips:alice@example.com")) == Set(live.keys.filter { $0.hasPrefix("sips:") }))
            #expect(Set(registrar.query("sip:alice@example.com")) == Set(live.keys))
        }
    }
}
