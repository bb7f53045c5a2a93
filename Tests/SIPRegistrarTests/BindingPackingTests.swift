import SIPMessage
@testable import SIPRegistrar
import SIPTestSupport
import Testing

/// The packed binding record must read back every value exactly as it was given, and two
/// bindings with the same values must be equal and hash alike, whichever way they were made.
@Suite struct BindingPackingTests {
    func sample(instance: String? = nil, regID: Int? = nil) -> Binding {
        Binding(aor: "alice@example.com", uri: "sip:alice@192.0.2.10:5060;transport=udp", scheme: .sip, q: 500,
                expiresAt: 1_700_000_600_000, updatedAt: 1_700_000_000_000, callID: "c7d6fcc281d15b30@192.0.2.10",
                cseq: 40_208, instance: instance, regID: regID, otherParameters: ";+org.linphone.specs=\"lime\"",
                userAgent: "baresip v1.0.0", transport: .udp, sourceHost: "192.0.2.10", sourcePort: 5060)
    }

    @Test func everyFieldReadsBackAsGiven() {
        let b = Binding(aor: "alice@example.com", uri: "sips:alice@[2001:db8::1]:5061", scheme: .sips, q: 0,
                        expiresAt: -5, updatedAt: Int64.max, callID: "x", cseq: UInt32.max,
                        instance: "<urn:uuid:2b8acd00-0430-25b9-5543-0667182cd11f>", regID: 1,
                        otherParameters: ";a=b", path: ["<sip:edge.example.com;lr>", "<sip:p2;lr>"], userAgent: nil,
                        transport: .tls, sourceHost: "2001:db8::1", sourcePort: 65535, flowID: 0,
                        tlsIdentity: "sip:alice@example.com", node: "node-b", remoteFlowID: UInt64.max)
        #expect(b.aor == "alice@example.com")
        #expect(b.uri == "sips:alice@[2001:db8::1]:5061")
        #expect(b.scheme == .sips && b.transport == .tls)
        #expect(b.q == 0 && b.expiresAt == -5 && b.updatedAt == Int64.max)
        #expect(b.callID == "x" && b.cseq == UInt32.max)
        #expect(b.instance == "<urn:uuid:2b8acd00-0430-25b9-5543-0667182cd11f>" && b.regID == 1)
        #expect(b.otherParameters == ";a=b")
        #expect(b.path == ["<sip:edge.example.com;lr>", "<sip:p2;lr>"])
        #expect(b.userAgent == nil && b.sourceHost == "2001:db8::1" && b.sourcePort == 65535)
        #expect(b.flowID == 0 && b.tlsIdentity == "sip:alice@example.com")
        #expect(b.node == "node-b" && b.remoteFlowID == UInt64.max)
    }

    @Test func absentValuesStayAbsent() {
        let b = Binding(aor: "a@h", uri: "", scheme: .other, expiresAt: 0, updatedAt: 0, callID: "", cseq: 0,
                        transport: .udp, sourceHost: "", sourcePort: 0)
        #expect(b.q == nil && b.instance == nil && b.regID == nil && b.flowID == nil)
        #expect(b.path.isEmpty && b.tlsIdentity == nil && b.node == nil && b.remoteFlowID == nil)
        #expect(b.uri.isEmpty && b.callID.isEmpty && b.otherParameters.isEmpty)
    }

    @Test func instancesThatAreNotLowercaseUUIDsAreKeptAsText() {
        for text in ["<urn:uuid:2B8ACD00-0430-25B9-5543-0667182CD11F>",  // uppercase: must not come back lowercased
                     "<urn:uuid:2b8acd00-0430-25b9-5543-0667182cd11>",   // one digit short
                     "<urn:uuid:2b8acd00x0430-25b9-5543-0667182cd11f>",  // no dash
                     "<urn:uuid:2b8acd00-0430-25b9-5543-0667182cd11g>",  // not hex
                     "urn:uuid:2b8acd00-0430-25b9-5543-0667182cd11f",     // no angle brackets
                     "<urn:uuid:2b8acd00-0430-25b9-5543-0667182cd11f>x", "<urn:imei:35-209900-176148-1>", "é", ""] {
            var b = sample()
            b.instance = text
            #expect(b.instance == text)
            if case .uuid? = b.instanceID { Issue.record("\(text) was packed as a UUID") }
        }
        let uuid = "<urn:uuid:00000000-0000-0000-0000-000000000000>"
        var b = sample()
        b.instance = uuid
        guard case .uuid? = b.instanceID else { Issue.record("a lowercase UUID is packed"); return }
        #expect(b.instance == uuid)
        b.instance = "<urn:uuid:ffffffff-ffff-ffff-ffff-ffffffffffff>"
        #expect(b.instance == "<urn:uuid:ffffffff-ffff-ffff-ffff-ffffffffffff>")
    }

    @Test func regIDsOfAnySizeReadBack() {
        for id in [0, 1, 2_147_483_647, Int(UInt32.max) - 1, Int(UInt32.max), 1 << 40, -1, Int.min, Int.max] {
            var b = sample()
            b.regID = id
            #expect(b.regID == id)
            #expect(b == sample(regID: id), "set and initialised alike for \(id)")
            #expect(b.hashValue == sample(regID: id).hashValue)
            b.regID = nil
            #expect(b.regID == nil && b == sample())
        }
    }

    @Test func clearingTheRareFieldsGivesTheBindingWithoutThem() {
        var b = sample()
        b.path = ["<sip:p;lr>"]
        b.tlsIdentity = "sip:alice@example.com"
        b.node = "n1"
        b.remoteFlowID = 9
        b.regID = -3
        #expect(b != sample())
        b.path = []
        b.tlsIdentity = nil
        b.node = nil
        b.remoteFlowID = nil
        b.regID = nil
        #expect(b == sample() && b.hashValue == sample().hashValue)
    }

    @Test func theThreePackedTextsChangeIndependently() {
        var b = sample()
        b.uri = "sip:bob@h"
        #expect(b.uri == "sip:bob@h" && b.callID == "c7d6fcc281d15b30@192.0.2.10"
                && b.otherParameters == ";+org.linphone.specs=\"lime\"")
        b.callID = ""
        #expect(b.uri == "sip:bob@h" && b.callID.isEmpty && b.otherParameters == ";+org.linphone.specs=\"lime\"")
        b.otherParameters = ";ü=ö"
        #expect(b.uri == "sip:bob@h" && b.callID.isEmpty && b.otherParameters == ";ü=ö")
        b.uri = "sip:alice@192.0.2.10:5060;transport=udp"
        b.callID = "c7d6fcc281d15b30@192.0.2.10"
        b.otherParameters = ";+org.linphone.specs=\"lime\""
        #expect(b == sample() && b.hashValue == sample().hashValue)
    }

    @Test func qAndPortAndFlowKeepTheirValues() {
        var b = sample()
        for q in [0, 1, 999, 1000] {
            b.q = q
            #expect(b.q == q)
        }
        b.q = nil
        #expect(b.q == nil)
        b.flowID = 42
        #expect(b.flowID == 42)
        b.flowID = nil
        #expect(b.flowID == nil && b == { var s = sample(); s.q = nil; return s }())
        b.sourcePort = 0
        #expect(b.sourcePort == 0)
    }

    @Test func contactHeaderEchoesAPackedInstanceQuoted() {
        let uuid = "<urn:uuid:2b8acd00-0430-25b9-5543-0667182cd11f>"
        let b = sample(instance: uuid, regID: 1)
        #expect(b.contactHeaderValue(at: 1_700_000_000_000)
                == "<sip:alice@192.0.2.10:5060;transport=udp>;expires=600;q=0.5;+sip.instance=\"\(uuid)\";reg-id=1"
                + ";+org.linphone.specs=\"lime\"")
        #expect(b.contactParameters == ";+sip.instance=\"\(uuid)\";reg-id=1;+org.linphone.specs=\"lime\"")
    }

    /// The expiry heap names an address of record only: every due binding of it goes, a
    /// binding refreshed since stays, and a stale entry removes nothing.
    @Test func expiryRemovesEveryDueBindingOfAnAddressAndOnlyThose() async throws {
        let clock = ManualRegistrarClock()
        let r = try Registrar(configuration: RegistrarConfiguration(minExpires: 60, maxExpires: 3600), clock: clock)
        var b = RegisterBuilder()
        b.contacts = ["<sip:a@h1>;expires=60", "<sip:a@h2>;expires=120", "<sip:a@h3>;expires=60"]
        #expect(try await r.send(b)?.statusCode == 200)
        clock.advance(seconds: 30)
        b.cseq = 2
        b.contacts = ["<sip:a@h3>;expires=600"]  // refreshed: its first heap entry is now stale
        #expect(try await r.send(b)?.statusCode == 200)
        clock.advance(seconds: 31)
        let first = await r.expire()
        #expect(first.map(\.uri) == ["sip:a@h1"])
        #expect(Set(r.bindings(ofAOR: "alice@example.com").map(\.uri)) == ["sip:a@h2", "sip:a@h3"])
        clock.advance(seconds: 60)
        #expect(await r.expire().map(\.uri) == ["sip:a@h2"])
        #expect(r.bindings(ofAOR: "alice@example.com").map(\.uri) == ["sip:a@h3"])
        #expect(await r.expire().isEmpty)
        clock.advance(seconds: 600)
        #expect(await r.expire().map(\.uri) == ["sip:a@h3"])
        #expect(r.bindingCount == 0)
    }

    @Test func theRecordStaysPacked() {
        // The memory figure in the README depends on it (a million bindings in under 500 bytes each).
        #expect(MemoryLayout<Binding>.stride <= 136)
    }
}
