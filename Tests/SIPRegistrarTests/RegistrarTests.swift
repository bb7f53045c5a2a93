import SIPMessage
@testable import SIPRegistrar
import SIPTestSupport
import Testing

@Suite struct RegistrarRegisterTests {
    let clock = ManualRegistrarClock()

    func registrar(_ c: RegistrarConfiguration = RegistrarConfiguration(minExpires: 60, maxExpires: 3600),
                   store: any BindingStore = InMemoryBindingStore()) throws -> Registrar {
        try Registrar(configuration: c, store: store, clock: clock)
    }

    @Test func registersAndAnswersWithBindingsAndDate() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.expires = 600
        let response = try #require(try await r.send(b))
        #expect(response.statusCode == 200)
        #expect(response.contactList.map(\.uri) == ["sip:alice@192.0.2.10:5060"])
        #expect(response.contactList.first?.expires == 600)
        #expect(response.headers.date == Substring(SIPDate.format(secondsSince1970: clock.nowMilliseconds() / 1000)))
        #expect(try response.headers.to?.tag != nil)
        #expect(r.query("sip:alice@example.com") == ["sip:alice@192.0.2.10:5060"])
        let binding = try #require(r.lookup("sip:alice@example.com").first)
        #expect(binding.transport == .udp && binding.source == "192.0.2.10:5060" && binding.callID == "call-1")
    }

    @Test func expiryPrecedenceAndCaps() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.contacts = ["<sip:a@h1>;expires=120", "<sip:a@h2>", "<sip:a@h3>;expires=99999"]
        b.expires = 300
        let response = try #require(try await r.send(b))
        #expect(response.statusCode == 200)
        let byURI = Dictionary(uniqueKeysWithValues: response.contactList.map { ($0.uri, $0.expires) })
        #expect(byURI["sip:a@h1"] == 120)
        #expect(byURI["sip:a@h2"] == 300)
        #expect(byURI["sip:a@h3"] == 3600)
    }

    @Test func defaultExpiryIs3600CappedToMax() async throws {
        let r = try registrar(RegistrarConfiguration(minExpires: 30, maxExpires: 300))
        let response = try #require(try await r.send(RegisterBuilder()))
        #expect(response.contactList.first?.expires == 300)
        let r2 = try registrar(RegistrarConfiguration(minExpires: 30, maxExpires: 7200))
        #expect(try await r2.send(RegisterBuilder())?.contactList.first?.expires == 3600)
    }

    @Test func malformedExpiresHeaderMeansDefault() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.extra = ["Expires: soon"]
        #expect(try await r.send(b)?.contactList.first?.expires == 3600)
    }

    @Test func intervalTooBriefCarriesMinExpires() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.expires = 30
        let response = try #require(try await r.send(b))
        #expect(response.statusCode == 423)
        #expect(response.reasonPhrase == "Interval Too Brief")
        #expect(try response.headers.minExpires == 60)
        #expect(r.query("sip:alice@example.com").isEmpty)
    }

    @Test func zeroRemovesOneContact() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.contacts = ["<sip:a@h1>", "<sip:a@h2>"]
        _ = try await r.send(b)
        b.contacts = ["<sip:a@h1>;expires=0"]
        b.cseq = 2
        let response = try #require(try await r.send(b))
        #expect(response.statusCode == 200)
        #expect(response.contactList.map(\.uri) == ["sip:a@h2"])
        #expect(r.query("sip:alice@example.com") == ["sip:a@h2"])
    }

    @Test func wildcardRules() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.contacts = ["<sip:a@h1>", "<sip:a@h2>"]
        _ = try await r.send(b)
        for (contacts, expires, extra) in [(["*"], 60, [String]()), (["*"], nil, []), (["*, <sip:a@h3>"], 0, []),
                                          (["*", "<sip:a@h3>"], 0, [])] as [([String], Int?, [String])] {
            var w = b
            w.contacts = contacts
            w.expires = expires
            w.extra = extra
            w.cseq = 5
            let response = try #require(try await r.send(w))
            #expect(response.statusCode == 400, "\(contacts) \(String(describing: expires))")
            #expect(response.reasonPhrase == "Invalid Wildcard Contact")
        }
        #expect(r.query("sip:alice@example.com").count == 2)
        var w = b
        w.contacts = ["*"]
        w.expires = 0
        w.cseq = 1  // same Call-ID, CSeq not higher: refused
        #expect(try await r.send(w)?.statusCode == 400)
        w.cseq = 6
        let ok = try #require(try await r.send(w))
        #expect(ok.statusCode == 200 && ok.contactList.isEmpty)
        #expect(r.query("sip:alice@example.com").isEmpty)
        #expect(r.bindingCount == 0)
    }

    @Test func sameCallIDNeedsHigherCSeq() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.cseq = 10
        b.expires = 600
        _ = try await r.send(b)
        clock.advance(seconds: 100)
        b.expires = 1200
        let stale = try #require(try await r.send(b))
        #expect(stale.statusCode == 400 && stale.reasonPhrase == "Invalid CSeq")
        #expect(r.lookup("sip:alice@example.com").first?.remainingSeconds(at: clock.nowMilliseconds()) == 500)
        b.callID = "other-call"
        b.cseq = 1
        let moved = try #require(try await r.send(b))
        #expect(moved.statusCode == 200 && moved.contactList.first?.expires == 1200)
        #expect(r.lookup("sip:alice@example.com").first?.callID == "other-call")
    }

    @Test func severalContactsAreAppliedAtomically() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.contacts = ["<sip:a@h1>"]
        b.cseq = 5
        _ = try await r.send(b)
        // h2 is new, h1 repeats the CSeq: nothing may change.
        b.contacts = ["<sip:a@h2>, <sip:a@h1>"]
        let response = try #require(try await r.send(b))
        #expect(response.statusCode == 400)
        #expect(r.query("sip:alice@example.com") == ["sip:a@h1"])
        // One contact too brief: none applied.
        b.cseq = 6
        b.contacts = ["<sip:a@h2>", "<sip:a@h3>;expires=5"]
        #expect(try await r.send(b)?.statusCode == 423)
        #expect(r.query("sip:alice@example.com") == ["sip:a@h1"])
    }

    @Test func registerWithoutContactIsAFetch() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.contacts = ["<sip:a@h1>;q=0.5", "<sip:a@h2>"]
        _ = try await r.send(b)
        b.contacts = []
        b.cseq = 2
        let response = try #require(try await r.send(b))
        #expect(response.statusCode == 200)
        #expect(Set(response.contactList.map(\.uri)) == ["sip:a@h1", "sip:a@h2"])
        let text = String(decoding: response.serialized(), as: UTF8.self)
        #expect(text.contains("Contact: <sip:a@h1>;expires=3600;q=0.5\r\n"))
    }

    @Test func contactLimit() async throws {
        var c = RegistrarConfiguration(minExpires: 60, maxExpires: 3600, maxContactsPerAOR: 2)
        let r = try registrar(c)
        var b = RegisterBuilder()
        b.contacts = ["<sip:a@h1>", "<sip:a@h2>"]
        #expect(try await r.send(b)?.statusCode == 200)
        b.contacts = ["<sip:a@h3>"]
        b.cseq = 2
        let refused = try #require(try await r.send(b))
        #expect(refused.statusCode == 403 && refused.reasonPhrase == "Too Many Registrations")
        // Refreshing an existing one is fine at the limit.
        b.contacts = ["<sip:a@h1>"]
        b.cseq = 3
        #expect(try await r.send(b)?.statusCode == 200)

        c.replaceOldestWhenFull = true
        let r2 = try registrar(c)
        b.contacts = ["<sip:a@h1>"]
        b.cseq = 1
        _ = try await r2.send(b)
        clock.advance(seconds: 1)
        b.contacts = ["<sip:a@h2>"]
        b.cseq = 2
        _ = try await r2.send(b)
        clock.advance(seconds: 1)
        b.contacts = ["<sip:a@h3>"]
        b.cseq = 3
        let replaced = try #require(try await r2.send(b))
        #expect(replaced.statusCode == 200)
        #expect(Set(r2.query("sip:alice@example.com")) == ["sip:a@h2", "sip:a@h3"])
    }

    @Test func instanceAndRegIDReplaceEvenWhenURIChanges() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.contacts = ["<sip:alice@192.0.2.10:5060>;+sip.instance=\"<urn:uuid:1>\";reg-id=1"]
        _ = try await r.send(b)
        b.contacts = ["<sip:alice@192.0.2.99:6000>;+sip.instance=\"<urn:uuid:1>\";reg-id=1"]
        b.callID = "new-call"
        let response = try #require(try await r.send(b))
        #expect(response.contactList.map(\.uri) == ["sip:alice@192.0.2.99:6000"])
        let binding = try #require(r.lookup("sip:alice@example.com").first)
        #expect(binding.instance == "<urn:uuid:1>" && binding.regID == 1)
        let text = String(decoding: response.serialized(), as: UTF8.self)
        #expect(text.contains(";+sip.instance=\"<urn:uuid:1>\";reg-id=1"))
        // Another reg-id of the same instance is a second flow.
        b.contacts = ["<sip:alice@192.0.2.99:6001>;+sip.instance=\"<urn:uuid:1>\";reg-id=2"]
        b.cseq = 2
        _ = try await r.send(b)
        #expect(r.query("sip:alice@example.com").count == 2)
    }

    @Test func pathIsStoredAndEchoedOnlyWhenSupported() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.extra = ["Path: <sip:edge.example.com;lr>", "Supported: path"]
        let response = try #require(try await r.send(b))
        #expect(response.headers.values(.path) == ["<sip:edge.example.com;lr>"])
        #expect(r.lookup("sip:alice@example.com").first?.path == ["<sip:edge.example.com;lr>"])
        var b2 = RegisterBuilder()
        b2.to = "<sip:bob@example.com>"
        b2.extra = ["Path: <sip:edge.example.com;lr>"]
        let r2 = try #require(try await r.send(b2))
        #expect(r2.headers.values(.path).isEmpty)
        #expect(r.lookup("sip:bob@example.com").first?.path == [])
    }

    @Test func unsupportedRequireIs420() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.extra = ["Require: path, foo, bar"]
        let response = try #require(try await r.send(b))
        #expect(response.statusCode == 420 && response.reasonPhrase == "Bad Extension")
        #expect(response.headers.unsupported == ["foo", "bar"])
    }

    @Test func nonSIPAORIs404() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.to = "<tel:+15551234>"
        #expect(try await r.send(b)?.statusCode == 404)
    }

    @Test func aorIsNormalized() async throws {
        let r = try registrar()
        var b = RegisterBuilder()
        b.to = "\"Alice\" <sip:alice@EXAMPLE.com:5060;transport=udp>"
        _ = try await r.send(b)
        #expect(r.query("sip:alice@example.com").count == 1)
        #expect(r.query("sip:Alice@example.com").isEmpty)  // users are case-sensitive
        #expect(r.query("sip:alice@Example.COM").count == 1)
    }

    @Test func storeFailureIs503AndChangesNothing() async throws {
        let store = FlakyStore()
        let r = try registrar(store: store)
        _ = try await r.send(RegisterBuilder())
        store.failing.withLock { $0 = true }
        var b = RegisterBuilder()
        b.contacts = ["<sip:a@h9>"]
        b.cseq = 2
        let response = try #require(try await r.send(b))
        #expect(response.statusCode == 503)
        #expect(try response.headers.retryAfter?.seconds == 5)
        #expect(r.query("sip:alice@example.com") == ["sip:alice@192.0.2.10:5060"])
        #expect(r.bindingCount == 1)
        #expect(store.inner.count == 1)
    }

    @Test func storeSeesEveryChangeAndLoadDropsExpired() async throws {
        let store = InMemoryBindingStore()
        let r = try registrar(store: store)
        var b = RegisterBuilder()
        b.contacts = ["<sip:a@h1>;expires=100", "<sip:a@h2>;expires=1000"]
        _ = try await r.send(b)
        #expect(store.count == 2)
        clock.advance(seconds: 200)
        let restarted = try registrar(store: store)
        #expect(try await restarted.load() == 1)
        #expect(restarted.query("sip:alice@example.com") == ["sip:a@h2"])
        #expect(store.count == 1)
    }

    @Test func eventsAreStreamed() async throws {
        let r = try registrar()
        let events = r.events()
        var b = RegisterBuilder()
        b.expires = 100
        _ = try await r.send(b)
        b.cseq = 2
        _ = try await r.send(b)
        b.cseq = 3
        b.expires = 0
        _ = try await r.send(b)
        b.cseq = 4
        b.expires = 100
        _ = try await r.send(b)
        clock.advance(seconds: 101)
        _ = await r.expire()
        var kinds: [String] = []
        for await e in events {
            switch e {
            case .created: kinds.append("created")
            case .refreshed: kinds.append("refreshed")
            case .removed: kinds.append("removed")
            case .expired: kinds.append("expired")
            }
            if kinds.count == 5 { break }
        }
        #expect(kinds == ["created", "refreshed", "removed", "created", "expired"])
    }
}
