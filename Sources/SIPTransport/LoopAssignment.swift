import Synchronization

/// Chooses the event loop that processes an inbound message when one peer's messages are
/// spread over the loops (``TransportConfiguration/spreadAcrossLoops``).
///
/// A message stays on the loop that read it unless that loop is falling behind (its leg
/// reports a backlog: see ``BacklogMeter``): handing a message to another loop wakes that
/// loop's thread and makes both threads meet on shared locks and on each other's memory
/// (measured on 2 cores at 8,000 REGISTERs/s with every other message changing loops: 0.5
/// contended lock waits per REGISTER, and about an eighth more CPU per REGISTER than
/// without). When the reading loop falls behind, each new message goes to the loop with the
/// fewest messages in flight, so one busy peer still keeps every core working.
///
/// Order: messages whose Call-ID hashes to the same bucket are processed on one loop, in the
/// order they were read, as long as any of them is still in flight (from being read until its
/// receive chain has finished). A bucket moves to another loop only when it is empty, so the
/// requests of one registration or dialog (a CANCEL right behind its INVITE, an ACK behind
/// its 200) are never overtaken by each other. No lock: one atomic word per bucket and one
/// counter per loop.
final class LoopAssignment: Sendable {
    /// Where a message was assigned; handed back to ``finish(_:)`` exactly once.
    struct Ticket: Sendable, Equatable {
        let bucket: Int
        let loop: Int
    }

    /// One atomic word: the owning loop in the high 32 bits, messages in flight in the low 32.
    final class Word: Sendable {
        let value = Atomic<UInt64>(0)
    }

    let loopCount: Int
    private let buckets: [Word]
    private let inFlight: [Word]

    /// - Parameters:
    ///   - loopCount: the event loops, indexed from 0.
    ///   - buckets: Call-ID hash buckets (two Call-IDs in one bucket share its order).
    init(loopCount: Int, buckets: Int = 4_096) {
        self.loopCount = max(1, loopCount)
        self.buckets = (0..<max(1, buckets)).map { _ in Word() }
        self.inFlight = (0..<self.loopCount).map { _ in Word() }
    }

    /// Assigns a message read by loop `reader` whose Call-ID hashes to `hash`; `readerIsBehind`
    /// when the reading loop's leg has a backlog.
    func assign(hash: UInt64, reader: Int, readerIsBehind: Bool) -> Ticket {
        let bucket = Int(hash % UInt64(buckets.count))
        let word = buckets[bucket]
        var state = word.value.load(ordering: .acquiring)
        while true {
            let pending = state & 0xffff_ffff
            let loop = pending > 0 ? Int(state >> 32) : choose(reader: reader, hash: hash, readerIsBehind: readerIsBehind)
            let next = UInt64(loop) << 32 | (pending + 1)
            let (exchanged, original) = word.value.compareExchange(expected: state, desired: next, ordering: .acquiringAndReleasing)
            if exchanged {
                inFlight[loop].value.add(1, ordering: .relaxed)
                return Ticket(bucket: bucket, loop: loop)
            }
            state = original
        }
    }

    /// The message of `ticket` has been processed: its bucket may move once it is empty.
    func finish(_ ticket: Ticket) {
        inFlight[ticket.loop].value.subtract(1, ordering: .relaxed)
        // Only the count changes (it is at least 1: this message's); the owner bits stay.
        buckets[ticket.bucket].value.subtract(1, ordering: .acquiringAndReleasing)
    }

    /// Messages in flight on `loop` (for tests and metrics).
    func inFlight(on loop: Int) -> Int { Int(inFlight[loop].value.load(ordering: .relaxed)) }

    /// An empty bucket's loop: the reader while it keeps up, else the least busy loop (ties
    /// broken from the hash, so equal loops share the work).
    private func choose(reader: Int, hash: UInt64, readerIsBehind: Bool) -> Int {
        if !readerIsBehind, reader >= 0, reader < loopCount { return reader }
        let start = Int((hash >> 32) % UInt64(loopCount))
        var best = start
        var bestLoad = UInt64.max
        for step in 0..<loopCount {
            let loop = (start + step) % loopCount
            let load = inFlight[loop].value.load(ordering: .relaxed)
            if load < bestLoad {
                best = loop
                bestLoad = load
            }
        }
        return best
    }
}

/// Tells from a leg's reads whether its socket or connection has a backlog. NIO reads a
/// readable socket a bounded number of times per pass of its loop and then reports the end of
/// the read; a pass that delivered as many messages as a pass can hold stopped at the bound,
/// not because the socket was empty. Several such passes in a row mean the loop is falling
/// behind what arrives (a single burst from a peer fills one or two). One per channel, used on
/// its event loop only.
struct BacklogMeter {
    /// Messages that make a read pass full.
    let fullPass: Int
    /// Full passes in a row that make a backlog.
    let passesToBacklog: Int
    private var inPass = 0
    private var fullInARow = 0

    init(fullPass: Int, passesToBacklog: Int = 16) {
        self.fullPass = max(1, fullPass)
        self.passesToBacklog = max(1, passesToBacklog)
    }

    /// Whether the passes so far say the loop is behind.
    var isBehind: Bool { fullInARow >= passesToBacklog }

    /// One message read in the current pass.
    mutating func message() { inPass += 1 }

    /// The read pass ended (`channelReadComplete`).
    mutating func passEnded() {
        fullInARow = inPass >= fullPass ? fullInARow + 1 : 0
        inPass = 0
    }
}
