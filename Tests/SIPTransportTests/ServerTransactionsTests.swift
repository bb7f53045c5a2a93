@testable import SIPTransport
import Testing

/// The server-transaction cache (RFC 3261 17.2.2), its shards and its bounds, on a given clock.
@Suite struct ServerTransactionsTests {
    let second: UInt64 = 1_000_000_000

    @Test func aRetransmissionIsAbsorbedThenAnsweredFromTheCacheUntilTimerJ() {
        let t = ServerTransactions(capacity: 100)
        let key = ServerTransactions.Key(text: "1|z9hG4bK1|a:5060|REGISTER")
        #expect(t.begin(key, now: 0) == .new)
        #expect(t.begin(key, now: 1) == .absorb)
        t.complete(key, response: [1, 2, 3], timerJ: .seconds(32), now: 2)
        #expect(t.begin(ServerTransactions.Key(text: "1|z9hG4bK1|a:5060|REGISTER"), now: 3) == .resend([1, 2, 3]))
        #expect(t.begin(key, now: 2 + 32 * second + 1) == .new, "Timer J ran out: a new transaction")
    }

    @Test func keysOfEveryShardAreKeptApartAndCounted() {
        let t = ServerTransactions(capacity: 10_000, shards: 16)
        let keys = (0..<1_000).map { ServerTransactions.Key(text: "1|z9hG4bK\($0)|a:5060|REGISTER") }
        #expect(keys.allSatisfy { t.begin($0, now: 0) == .new })
        #expect(t.count == 1_000)
        for (i, k) in keys.enumerated() { t.complete(k, response: [UInt8(i % 256)], timerJ: .seconds(32), now: 0) }
        #expect(keys.enumerated().allSatisfy { t.begin($1, now: 1) == .resend([UInt8($0 % 256)]) })
        // Zero Timer J (reliable transports): forgotten at once.
        let tcp = ServerTransactions.Key(text: "1|z9hG4bKtcp|a:5060|REGISTER")
        #expect(t.begin(tcp, now: 1) == .new)
        t.complete(tcp, response: [9], timerJ: .zero, now: 1)
        #expect(t.begin(tcp, now: 2) == .new)
    }

    @Test func aFullTableProcessesWithoutRememberingAndAbandonForgets() {
        let t = ServerTransactions(capacity: 4, shards: 1)
        let keys = (0..<6).map { ServerTransactions.Key(text: "k\($0)") }
        for k in keys { #expect(t.begin(k, now: 0) == .new) }
        #expect(t.count == 4)
        #expect(t.begin(keys[5], now: 0) == .new, "not remembered: processed again")
        t.abandon(keys[0])
        #expect(t.count == 3)
        #expect(t.begin(keys[0], now: 0) == .new)
    }
}
