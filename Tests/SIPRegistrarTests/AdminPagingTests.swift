import SIPMessage
@testable import SIPRegistrar
import SIPTestSupport
import Testing

/// The admin API's listing of every binding: ordered, paged, and sorted outside the lock.
@Suite struct AdminPagingTests {
    let clock = ManualRegistrarClock()

    /// 700 AORs (more than two lock-hold chunks), every third with two contacts, some short-lived.
    func filled() async throws -> Registrar {
        let r = try Registrar(configuration: RegistrarConfiguration(minExpires: 60, maxExpires: 3600), clock: clock)
        for i in 0..<700 {
            var b = RegisterBuilder()
            b.to = "<sip:u\(i)@example.com>"
            b.callID = "c\(i)"
            b.contacts = i % 3 == 0 ? ["<sip:u\(i)@192.0.2.10:6000>", "<sip:u\(i)@192.0.2.10:5000>"] : ["<sip:u\(i)@192.0.2.10:5060>"]
            b.expires = i % 10 == 0 ? 60 : 3600
            let response = try await r.send(b)
            #expect(response?.statusCode == 200)
        }
        return r
    }

    @Test func pagesCoverEveryActiveBindingInAOROrderThenContactOrder() async throws {
        let r = try await filled()
        clock.advance(seconds: 120)  // the 60 s ones have expired (not purged: no timers)
        var expected: [String] = []
        for i in (0..<700).filter({ $0 % 10 != 0 }).sorted(by: { "u\($0)@example.com" < "u\($1)@example.com" }) {
            expected += i % 3 == 0 ? ["sip:u\(i)@192.0.2.10:5000", "sip:u\(i)@192.0.2.10:6000"] : ["sip:u\(i)@192.0.2.10:5060"]
        }
        for limit in [1, 7, 100, 1000] {
            var seen: [String] = []
            var offset = 0
            while true {
                let page = r.allBindings(offset: offset, limit: limit)
                #expect(page.total == expected.count)
                if page.bindings.isEmpty { break }
                #expect(page.bindings.count <= limit)
                seen += page.bindings.map(\.uri)
                offset += page.bindings.count
            }
            #expect(seen == expected, "limit \(limit)")
        }
        #expect(r.allBindings(offset: expected.count + 5, limit: 10).bindings.isEmpty)
    }

    @Test func theSortRunsWithTheLockFree() async throws {
        let r = try await filled()
        var countDuringSort: Int?
        // Runs between the copy of the keys and the sort; it takes the registrar's lock itself,
        // which only works (instead of deadlocking) when the listing does not hold it.
        let page = r.allBindings(offset: 0, limit: 5, afterKeysCopied: { countDuringSort = r.bindingCount })
        #expect(countDuringSort == r.bindingCount)
        #expect(page.bindings.count == 5 && page.total == r.bindingCount)
    }
}
