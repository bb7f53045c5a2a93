import Synchronization

/// Stateless digest nonces (RFC 7616 3.3 leaves the nonce's content to the server):
/// `hex(issued ‖ salt ‖ node ‖ HMAC-SHA-256(secret, issued ‖ salt ‖ node ‖ realm)[0..<16])`,
/// where `node` is a tag derived from the secret, the issuing node's name and a random
/// number drawn at start.
///
/// Only the node that issued a nonce accepts it, and only until it restarts: the
/// nonce-counts that refuse replays (RFC 7616 3.4.5) are kept in that process's memory,
/// so a nonce accepted by another node, or by the same node after a restart, could be
/// replayed there. Another node holding the same secret still recognises the nonce
/// as genuine and answers it with a fresh challenge, `stale=true`, so a client whose
/// requests move between nodes re-authenticates without asking its user.
final class DigestNonces: Sendable {
    enum Check: Equatable {
        case valid(issuedAt: Int64)
        case stale
        /// Genuine (made with this secret) but issued by another node, or in the format from
        /// before nonces named their node: answered `stale=true`, never accepted.
        case otherNode
        case invalid
    }

    enum CountCheck: Equatable {
        case fresh
        case replayed
        case forgotten
    }

    private let secret: [UInt8]
    private let hashing: any DigestHashing
    private let lifetimeMilliseconds: Int64
    private let maxTracked: Int
    private let salt = Atomic<UInt64>(0)
    private let saltBase: UInt64
    /// This node's tag: the first 8 bytes of HMAC-SHA-256(secret, "node:" ‖ name ‖ ":" ‖ start).
    private let nodeTag: [UInt8]

    struct Seen: Sendable {
        /// nonce → (issued at, highest nonce-count seen).
        var counts: [String: (issued: Int64, nc: UInt32)] = [:]
        /// Nonces issued before this time are no longer tracked: they are answered stale.
        var floor: Int64 = .min
        var sincePrune = 0
    }

    private let seen = Mutex<Seen>(Seen())

    /// Hex characters of a nonce: 8 bytes time, 8 salt, 8 node tag, 16 MAC.
    static let length = 80
    /// The format without a node tag (time, salt, MAC), still recognised to answer it stale.
    static let unboundLength = 64

    init(secret: [UInt8], hashing: any DigestHashing, lifetimeSeconds: Int, maxTracked: Int, node: String = "") {
        self.secret = secret
        self.hashing = hashing
        self.lifetimeMilliseconds = Int64(lifetimeSeconds) * 1000
        self.maxTracked = maxTracked
        // The system's cryptographic generator (getrandom on Linux): a new tag per start.
        let start = UInt64.random(in: .min ... .max)
        self.nodeTag = Array(hashing.hmacSHA256(key: secret, Array("node:\(node):\(start)".utf8)).prefix(8))
        // Salts only need to differ between nonces; seeding from the secret and the node keeps nodes apart.
        let mac = hashing.hmacSHA256(key: secret, Array("salt:\(node):\(start)".utf8))
        self.saltBase = mac.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    func make(realm: String, now: Int64) -> String {
        let s = saltBase &+ salt.add(1, ordering: .relaxed).newValue &* 0x9E37_79B9_7F4A_7C15
        var payload = bigEndianBytes(UInt64(bitPattern: now)) + bigEndianBytes(s) + nodeTag
        payload += mac(payload, realm: realm)
        return hexString(payload)
    }

    func check(_ nonce: String, realm: String, now: Int64) -> Check {
        switch nonce.utf8.count {
        case Self.length:
            guard let bytes = hexBytes(nonce) else { return .invalid }
            let payload = Array(bytes[0..<24])
            guard constantTimeEqual(mac(payload, realm: realm), bytes[24..<40]) else { return .invalid }
            // Genuine, but another node's: its nonce-counts are not known here.
            guard constantTimeEqual(payload[16..<24], nodeTag) else { return .otherNode }
            let issued = Int64(bitPattern: payload[0..<8].reduce(0) { $0 << 8 | UInt64($1) })
            if issued > now + 5_000 { return .invalid }
            if now - issued > lifetimeMilliseconds { return .stale }
            return .valid(issuedAt: issued)
        case Self.unboundLength:
            // Issued before nonces named their node (an upgrade): genuine ones get a fresh challenge.
            guard let bytes = hexBytes(nonce) else { return .invalid }
            return constantTimeEqual(mac(Array(bytes[0..<16]), realm: realm), bytes[16..<32]) ? .otherNode : .invalid
        default:
            return .invalid
        }
    }

    /// Records a nonce-count for a valid nonce; refuses one not higher than already seen.
    func use(_ nonce: String, issuedAt: Int64, count: UInt32, now: Int64) -> CountCheck {
        seen.withLock { s in
            if issuedAt < s.floor { return .forgotten }
            if let prior = s.counts[nonce] {
                guard count > prior.nc else { return .replayed }
                s.counts[nonce] = (prior.issued, count)
                return .fresh
            }
            s.sincePrune += 1
            if s.sincePrune >= 4096 || s.counts.count >= maxTracked {
                s.sincePrune = 0
                let expiredBefore = now - lifetimeMilliseconds
                s.counts = s.counts.filter { $0.value.issued >= expiredBefore }
                // Still full: forget the older half of the lifetime; those nonces now get stale=true.
                var cut = now - lifetimeMilliseconds / 2
                while s.counts.count >= maxTracked {
                    s.floor = max(s.floor, cut)
                    let f = s.floor
                    s.counts = s.counts.filter { $0.value.issued >= f }
                    cut = (cut + now) / 2 + 1
                }
                if issuedAt < s.floor { return .forgotten }
            }
            s.counts[nonce] = (issuedAt, count)
            return .fresh
        }
    }

    var trackedCount: Int { seen.withLock { $0.counts.count } }

    private func mac(_ payload: [UInt8], realm: String) -> [UInt8] {
        Array(hashing.hmacSHA256(key: secret, payload + Array(realm.lowercased().utf8)).prefix(16))
    }
}

func bigEndianBytes(_ v: UInt64) -> [UInt8] {
    (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64($0))) }
}

func hexBytes(_ text: String) -> [UInt8]? {
    var out: [UInt8] = []
    out.reserveCapacity(text.utf8.count / 2)
    var high: UInt8?
    for c in text.utf8 {
        let v: UInt8
        switch c {
        case 0x30...0x39: v = c - 0x30
        case 0x61...0x66: v = c - 0x61 + 10
        case 0x41...0x46: v = c - 0x41 + 10
        default: return nil
        }
        if let h = high {
            out.append(h << 4 | v)
            high = nil
        } else {
            high = v
        }
    }
    return high == nil ? out : nil
}

/// Compares without an early exit, so the time taken does not tell where two values differ.
func constantTimeEqual(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
    guard a.count == b.count else { return false }
    var diff: UInt8 = 0
    for (x, y) in zip(a, b) { diff |= x ^ y }
    return diff == 0
}
