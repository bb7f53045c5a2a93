@testable import SIPTransport
import Testing

/// Which loop processes a message: the reader while it keeps up, the least busy loop when it
/// falls behind, and one loop per Call-ID bucket while any of its messages is in flight.
@Suite struct LoopAssignmentTests {
    @Test func aMessageStaysOnTheReadingLoopWhileItKeepsUp() {
        let a = LoopAssignment(loopCount: 2)
        let tickets = (0..<40).map { a.assign(hash: UInt64($0), reader: 1, readerIsBehind: false) }
        #expect(tickets.allSatisfy { $0.loop == 1 })
        #expect(a.inFlight(on: 1) == 40 && a.inFlight(on: 0) == 0)
        for t in tickets { a.finish(t) }
        #expect(a.inFlight(on: 1) == 0)
    }

    @Test func aReaderThatIsBehindSharesWithTheLeastBusyLoops() {
        let a = LoopAssignment(loopCount: 3, buckets: 1_000)
        let mine = (0..<2).map { a.assign(hash: UInt64(500 + $0), reader: 0, readerIsBehind: false) }
        #expect(mine.allSatisfy { $0.loop == 0 })
        let tickets = (0..<10).map { a.assign(hash: UInt64($0), reader: 0, readerIsBehind: true) }
        // Loop 0 had two: the others fill up to it first, then all three share evenly.
        let counts = (0..<3).map { a.inFlight(on: $0) }
        #expect(counts == [4, 4, 4], "\(counts)")
        for t in tickets + mine { a.finish(t) }
        #expect((0..<3).allSatisfy { a.inFlight(on: $0) == 0 })
    }

    @Test func aCallIDBucketKeepsItsLoopWhileAnyOfItsMessagesIsInFlight() {
        let a = LoopAssignment(loopCount: 2, buckets: 16)
        let first = a.assign(hash: 5, reader: 0, readerIsBehind: false)
        #expect(first.loop == 0)
        // Loop 0 is behind now, so an unrelated message goes to 1...
        #expect(a.assign(hash: 6, reader: 0, readerIsBehind: true).loop == 1)
        // ...but one of the first message's bucket follows it to 0, whoever read it.
        let second = a.assign(hash: 5, reader: 0, readerIsBehind: true)
        let third = a.assign(hash: 5 + 16, reader: 1, readerIsBehind: false)  // same bucket
        #expect(second == first && third == first)
        a.finish(first)
        a.finish(second)
        #expect(a.assign(hash: 5, reader: 1, readerIsBehind: false).loop == 0, "one message of the bucket is still in flight on 0")
    }

    @Test func anEmptyBucketMovesToWhereTheWorkIs() {
        let a = LoopAssignment(loopCount: 2, buckets: 16)
        let t = a.assign(hash: 3, reader: 0, readerIsBehind: false)
        #expect(t.loop == 0)
        a.finish(t)
        // Finished: the bucket is free, and a message read by loop 1 stays on loop 1.
        let u = a.assign(hash: 3, reader: 1, readerIsBehind: false)
        #expect(u.loop == 1)
        a.finish(u)
    }

    @Test func concurrentReadersNeverSplitABucket() async {
        let a = LoopAssignment(loopCount: 4, buckets: 8)
        // Four readers hammer eight buckets; while a bucket has messages in flight every new
        // message of it must land on the loop that holds them.
        let violations = await withTaskGroup(of: Int.self) { group in
            for reader in 0..<4 {
                group.addTask {
                    var bad = 0
                    for i in 0..<20_000 {
                        let hash = UInt64((i &* 7 &+ reader) % 8)
                        let t = a.assign(hash: hash, reader: reader, readerIsBehind: i % 3 == 0)
                        let u = a.assign(hash: hash, reader: (reader + 1) % 4, readerIsBehind: i % 2 == 0)
                        if u.loop != t.loop { bad += 1 }
                        a.finish(u)
                        a.finish(t)
                    }
                    return bad
                }
            }
            return await group.reduce(0, +)
        }
        #expect(violations == 0)
        #expect((0..<4).allSatisfy { a.inFlight(on: $0) == 0 })
    }
}

/// A leg is behind when several read passes in a row were full.
@Suite struct BacklogMeterTests {
    func pass(_ m: inout BacklogMeter, _ n: Int) {
        for _ in 0..<n { m.message() }
        m.passEnded()
    }

    @Test func fullPassesInARowMakeABacklogAndOneShortPassEndsIt() {
        var m = BacklogMeter(fullPass: 32, passesToBacklog: 3)
        #expect(!m.isBehind)
        pass(&m, 32)
        pass(&m, 40)
        #expect(!m.isBehind, "a burst of two passes is not a backlog")
        pass(&m, 32)
        #expect(m.isBehind)
        pass(&m, 32)
        #expect(m.isBehind)
        pass(&m, 31)
        #expect(!m.isBehind, "the socket was emptied")
        pass(&m, 32)
        pass(&m, 32)
        #expect(!m.isBehind)
    }

    @Test func shortPassesNeverMakeABacklog() {
        var m = BacklogMeter(fullPass: 8)
        for _ in 0..<100 { pass(&m, 7) }
        #expect(!m.isBehind)
    }
}
