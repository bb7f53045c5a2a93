import SIPMessage
@testable import SIPRegistrar
import SIPTLS
import SIPTestSupport
import Testing

@Suite struct UserTableTests {
    @Test func parsesWritesAndReplaces() throws {
        let text = """
            # comment
            alice@Example.COM md5=0123456789abcdef0123456789abcdef aliases=al@example.org

            bob@example.com sha-256=\(String(repeating: "ab", count: 32))\r
            """
        var t = try UserTable.parse(text)
        #expect(t.count == 2)
        #expect(t.lookup(user: "alice", realm: "example.com")?.aliases == ["al@example.org"])
        #expect(t.lookup(user: "Alice", realm: "example.com") == nil)
        #expect(t.lookup(user: "bob", realm: "EXAMPLE.com")?.ha1[.sha256] != nil)
        t.upsert(DigestUser(user: "alice", realm: "example.com", ha1: [.md5: String(repeating: "f", count: 32)]))
        let again = try UserTable.parse(t.serialized)
        #expect(again == t)
        #expect(again.users.map(\.user) == ["alice", "bob"])
    }

    @Test(arguments: [
        ("alice md5=00", 1, "expected user@realm first"),
        ("alice@example.com", 1, "no hash for alice@example.com (md5= or sha-256=)"),
        ("# x\nalice@example.com md5=xyz", 2, "md5 must be 32 hex digits"),
        ("alice@example.com sha1=00", 1, "unknown key 'sha1' (expected md5, sha-256 or aliases)"),
        ("alice@example.com md5", 1, "expected key=value, got 'md5'"),
    ])
    func errorsNameTheLine(text: String, line: Int, message: String) {
        #expect(throws: UserTableError(line: line, message: message)) { try UserTable.parse(text) }
    }

    @Test func digestMatchesTheRFCExamples() {
        let h = TestHashing()
        // RFC 2617 3.5 (MD5, qop=auth).
        let ha1 = h.ha1(.md5, user: "Mufasa", realm: "testrealm@host.com", password: "Circle Of Life")
        #expect(ha1 == "939e7578ed9e3c518a452acee763bce9")
        #expect(Authenticator.response(h, .md5, ha1: ha1, nonce: "dcd98b7102dd2f0e8b11d0f600bfb0c093", nc: "00000001",
                                       cnonce: "0a4f113b", qop: "auth", method: "GET", uri: "/dir/index.html")
            == "6629fae49393a05397450978507c4ef1")
        // RFC 7616 3.9.1 (SHA-256 and MD5).
        let nonce = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v", cnonce = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
        for (a, expected) in [(DigestAlgorithm.sha256, "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
                              (.md5, "8ca523f5e9506fed4657c9700eebdbec")] {
            let ha1 = h.ha1(a, user: "Mufasa", realm: "http-auth@example.org", password: "Circle of Life")
            #expect(Authenticator.response(h, a, ha1: ha1, nonce: nonce, nc: "00000001", cnonce: cnonce, qop: "auth",
                                           method: "GET", uri: "/dir/index.html") == expected)
        }
    }
}

@Suite struct SourceLimitTests {
    @Test func addressSetMatchesNetworksAndMappedAddresses() throws {
        let s = try IPAddressSet(["10.0.0.0/8", "192.0.2.1", "2001:db8::/32"])
        #expect(s.contains("10.200.3.4") && s.contains("::ffff:10.0.0.1") && s.contains("192.0.2.1"))
        #expect(!s.contains("11.0.0.1") && !s.contains("192.0.2.2") && !s.contains("garbage"))
        #expect(s.contains("2001:db8:1::5") && !s.contains("2001:db9::1"))
        #expect(IPAddressSet.loopback.contains("127.1.2.3") && IPAddressSet.loopback.contains("::1"))
        #expect(!IPAddressSet.empty.contains("127.0.0.1"))
        #expect(throws: IPAddressSetError(entry: "10.0.0.0/33")) { try IPAddressSet(["10.0.0.0/33"]) }
        #expect(throws: IPAddressSetError(entry: "example.com")) { try IPAddressSet(["example.com"]) }
    }

    @Test func windowLimiterBlocksLogsOnceAndStaysBounded() {
        let l = WindowLimiter(policy: .init(limit: 2, windowMilliseconds: 1_000, cooldownMilliseconds: 5_000), capacity: 100)
        #expect(l.record("a", now: 0) == .allowed)
        #expect(l.record("a", now: 10) == .allowed)
        #expect(l.record("a", now: 20) == .blocked(until: 5_020, firstInWindow: true))
        #expect(l.record("a", now: 30) == .blocked(until: 5_020, firstInWindow: false))
        #expect(l.isBlocked("a", now: 5_000) && !l.isBlocked("a", now: 5_020))
        #expect(l.record("a", now: 5_020) == .allowed)
        // A flood of distinct keys never grows the table past its capacity.
        for i in 0..<10_000 { _ = l.record("k\(i)", now: 6_000) }
        #expect(l.trackedCount <= 100)
    }

    /// A full table forgets its least recently seen key; a new key is counted, never let through untracked.
    @Test func fullWindowLimiterEvictsTheLeastRecentlyUsedKey() {
        let l = WindowLimiter(policy: .init(limit: 1, windowMilliseconds: 60_000, cooldownMilliseconds: 60_000), capacity: 3)
        for k in ["a", "b", "c"] { #expect(l.record(k, now: 0) == .allowed) }
        // Full. "a" is used again, so "b" is now the least recently used.
        #expect(l.record("a", now: 1) == .blocked(until: 60_001, firstInWindow: true))
        // A new key is tracked (and so limited): it takes b's place.
        #expect(l.record("d", now: 2) == .allowed)
        #expect(l.record("d", now: 3) == .blocked(until: 60_003, firstInWindow: true))
        #expect(l.trackedCount == 3)
        #expect(l.isBlocked("a", now: 4))
        // b was forgotten, so it counts afresh; c, now the least recently seen, makes room.
        #expect(l.record("b", now: 5) == .allowed)
        // Then c counts afresh and d makes room; a, seen at 4, stays blocked.
        #expect(l.record("c", now: 6) == .allowed)
        #expect(l.isBlocked("a", now: 7) && !l.isBlocked("d", now: 7))
    }

    @Test func lruTableKeepsRecencyOrderAndReusesSlots() {
        var t = LRUTable<String, Int>(capacity: 3)
        t.set("a", 1)
        t.set("b", 2)
        t.set("c", 3)
        #expect(t.keysByRecency == ["c", "b", "a"])
        #expect(t.value(forKey: "a") == 1)
        #expect(t.keysByRecency == ["a", "c", "b"])
        t.set("d", 4)  // evicts b
        #expect(t.keysByRecency == ["d", "a", "c"] && !t.contains("b"))
        #expect(t.removeValue(forKey: "a") == 1)
        t.set("e", 5)  // a free slot: nothing evicted
        #expect(t.keysByRecency == ["e", "d", "c"] && t.count == 3)
        #expect(t.modify("c", orInsert: { 0 }) { v -> Int in v += 10; return v } == 13)
        #expect(t.keysByRecency == ["c", "e", "d"])
        // A long flood stays within capacity, touching each key a constant number of times.
        var big = LRUTable<Int, Int>(capacity: 1_000)
        for i in 0..<100_000 { big.set(i, i) }
        #expect(big.count == 1_000 && big.keysByRecency.first == 99_999 && big.keysByRecency.last == 99_000)
    }

    @Test func sourceKeysGroupIPv6By64AndMapIPv4() {
        #expect(SourceKey.limitKey(forIP: "192.0.2.1") == "192.0.2.1")
        #expect(SourceKey.limitKey(forIP: "2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64")
        #expect(SourceKey.limitKey(forIP: "2001:DB8:0:0:ffff::1") == "2001:db8:0:0::/64")
        #expect(SourceKey.limitKey(forIP: "::1") == "0:0:0:0::/64")
        #expect(SourceKey.limitKey(forIP: "::ffff:192.0.2.1") == "192.0.2.1")
        #expect(SourceKey.limitKey(forIP: "fe80::1%eth0") == "fe80::1%eth0")
        #expect(SourceKey.limitKey(forIP: "not-an-address") == "not-an-address")
    }
}
