import NIOConcurrencyHelpers
import SIPMessage

/// The non-INVITE server transaction layer (RFC 3261 17.2.2), reduced to what a
/// registrar needs: a retransmitted request is answered from the cache (or absorbed
/// while the first copy is still being processed) instead of being processed again.
/// Completed entries live for Timer J (64·T1 on UDP, none on reliable transports).
final class ServerTransactions: Sendable {
    /// How a request is matched (RFC 3261 17.2.3). Its text is hashed once, with the process's
    /// random seed (a client cannot choose branches that collide): the hash picks the shard and
    /// is all the dictionary hashes again.
    struct Key: Hashable, Sendable {
        let text: String
        let hash: Int

        init(text: String) {
            self.text = text
            var hasher = Hasher()
            hasher.combine(text)
            self.hash = hasher.finalize()
        }

        static func == (a: Key, b: Key) -> Bool { a.hash == b.hash && a.text == b.text }
        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
    }

    enum State: Sendable {
        /// Being processed; a forwarded request remembers its latest provisional response.
        case proceeding([UInt8]?)
        case completed([UInt8])
    }

    enum Lookup: Equatable {
        /// A new transaction: process it.
        case new
        /// A retransmission while the first copy is in progress: drop it.
        case absorb
        /// A retransmission after the answer: send these bytes again.
        case resend([UInt8])
    }

    private struct Entry {
        var state: State
        var expiresAt: UInt64  // nanoseconds, monotonic; UInt64.max while proceeding
    }

    private struct Storage {
        var entries: [Key: Entry] = [:]
        /// Completed keys in expiry order (Timer J is constant per transport, so FIFO per transport).
        var expiryQueue: [(UInt64, Key)] = []
        var queueHead = 0
    }

    /// Shards with a lock each: every request takes one twice (begin, complete), from whichever
    /// event loop processes it, and one lock for all made the loops wait for each other.
    private let shards: [NIOLockedValueBox<Storage>]
    private let capacityPerShard: Int

    init(capacity: Int, shards: Int = 16) {
        let n = max(1, shards)
        self.shards = (0..<n).map { _ in NIOLockedValueBox(Storage()) }
        self.capacityPerShard = max(1, (capacity + n - 1) / n)
    }

    private func storage(_ key: Key) -> NIOLockedValueBox<Storage> {
        shards[Int(UInt(bitPattern: key.hash) % UInt(shards.count))]
    }

    /// The key of a request: the top Via's branch (with the magic cookie) plus sent-by and
    /// method; otherwise the RFC 2543 key of Request-URI, tags, Call-ID, CSeq and top Via.
    static func key(for request: SIPRequest, topVia: SIPVia?) -> Key? {
        guard let top = topVia else { return nil }
        let method = request.method == .ack ? SIPMethod.invite : request.method
        if let branch = top.branch, top.hasMagicCookie {
            return Key(text: "1|\(branch)|\(top.host.lowercased()):\(top.port ?? 0)|\(method)")
        }
        let toTag = (try? request.headers.to)??.tag ?? ""
        let fromTag = (try? request.headers.from)??.tag ?? ""
        let cseq = (try? request.headers.cseq)??.description ?? ""
        return Key(text: "2|\(request.uri)|\(toTag)|\(fromTag)|\(request.headers.callID ?? "")|\(cseq)|\(top)")
    }

    /// Records a new transaction or classifies a retransmission.
    func begin(_ key: Key, now: UInt64) -> Lookup {
        storage(key).withLockedValue { s in
            purge(&s, now: now)
            if let e = s.entries[key] {
                switch e.state {
                case .proceeding(nil): return .absorb
                // RFC 3261 17.2.1: a retransmitted INVITE gets the latest provisional response again.
                case .proceeding(let bytes?): return .resend(bytes)
                case .completed(let bytes): return .resend(bytes)
                }
            }
            guard s.entries.count < capacityPerShard else { return .new }  // full: process without remembering
            s.entries[key] = Entry(state: .proceeding(nil), expiresAt: .max)
            return .new
        }
    }

    /// Stores the final response for Timer J (or forgets the transaction when J is zero).
    func complete(_ key: Key, response: [UInt8], timerJ: Duration, now: UInt64) {
        storage(key).withLockedValue { s in
            guard s.entries[key] != nil else { return }
            let j = UInt64(max(0, timerJ.components.seconds)) * 1_000_000_000
                + UInt64(max(0, timerJ.components.attoseconds / 1_000_000_000))
            if j == 0 {
                s.entries[key] = nil
                return
            }
            let at = now + j
            s.entries[key] = Entry(state: .completed(response), expiresAt: at)
            s.expiryQueue.append((at, key))
        }
    }

    /// Remembers the latest provisional response of a transaction still in progress.
    func provisional(_ key: Key, response: [UInt8]) {
        storage(key).withLockedValue { s in
            guard case .proceeding? = s.entries[key]?.state else { return }
            s.entries[key]?.state = .proceeding(response)
        }
    }

    /// Forgets a transaction that produced no response (the request was passed on).
    func abandon(_ key: Key) {
        storage(key).withLockedValue { s in
            if case .proceeding? = s.entries[key]?.state { s.entries[key] = nil }
        }
    }

    var count: Int { shards.reduce(0) { $0 + $1.withLockedValue { $0.entries.count } } }

    private func purge(_ s: inout Storage, now: UInt64) {
        while s.queueHead < s.expiryQueue.count, s.expiryQueue[s.queueHead].0 <= now {
            let key = s.expiryQueue[s.queueHead].1
            if let e = s.entries[key], e.expiresAt <= now { s.entries[key] = nil }
            s.queueHead += 1
        }
        if s.queueHead > 4096, s.queueHead * 2 > s.expiryQueue.count {
            s.expiryQueue.removeFirst(s.queueHead)
            s.queueHead = 0
        }
    }
}

