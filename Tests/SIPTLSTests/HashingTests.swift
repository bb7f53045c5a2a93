import SIPTLS
import Testing

@Suite struct HashingTests {
    static func hex(_ bytes: [UInt8]) -> String {
        bytes.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined()
    }

    /// RFC 4231 4.2 and 4.3 (test cases 1 and 2): the published HMAC-SHA-256 values.
    @Test func keyedContextGivesTheRFC4231Values() throws {
        let one = try HMACSHA256Key(key: [UInt8](repeating: 0x0B, count: 20))
        #expect(Self.hex(one.mac(Array("Hi There".utf8)))
            == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
        let two = try HMACSHA256Key(key: Array("Jefe".utf8))
        #expect(Self.hex(two.mac(Array("what do ya want for nothing?".utf8)))
            == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    /// The same bytes as the one-shot HMAC for messages of every length up to two blocks and
    /// for an empty one, computed again and again from one context (it must not be consumed).
    @Test func keyedContextMatchesTheOneShotAndIsReusable() throws {
        let key = (0..<32).map { UInt8($0 * 7 & 0xFF) }
        let keyed = try HMACSHA256Key(key: key)
        for n in 0...130 {
            let message = (0..<n).map { UInt8($0 & 0xFF) }
            #expect(keyed.mac(message) == OpenSSLHashing.hmacSHA256(key: key, message), "message of \(n) bytes")
            #expect(keyed.mac(message[...]) == keyed.mac(message), "a slice of \(n) bytes")
        }
    }

    /// Many tasks share one context: every MAC is still right.
    @Test func keyedContextIsSharedByConcurrentTasks() async throws {
        let key = Array("node secret".utf8)
        let keyed = try HMACSHA256Key(key: key)
        let wrong = await withTaskGroup(of: Int.self) { group in
            for t in 0..<8 {
                group.addTask {
                    var bad = 0
                    for i in 0..<2_000 {
                        let message = Array("token \(t) \(i)".utf8)
                        if keyed.mac(message) != OpenSSLHashing.hmacSHA256(key: key, message) { bad += 1 }
                    }
                    return bad
                }
            }
            return await group.reduce(0, +)
        }
        #expect(wrong == 0)
    }
}
