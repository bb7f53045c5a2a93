import Synchronization

/// Stateless digest nonces: `hex(issued ‖ salt ‖ HMAC-SHA-256(secret, issued ‖ salt ‖ realm)[0..<16])`.
/// Any node holding the secret can check a nonce without having issued it; only the
/// nonce-count of nonces already used is remembered (bounded), to refuse replays.
final class DigestNonces: Sendable {
    enum Check: Equatable {
        case valid(issuedAt: Int64)
        case stale
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

    struct Seen: Sendable {
        /// nonce → (issued at, highest nonce-count seen).
        var counts: [String: (issued: Int64, nc: UInt32)] = [:]
        /// Nonces issued before this time are no longer tracked: they are answered stale.
        var floor: Int64 = .min
        var sincePrune = 0
    }

    private let seen = Mutex<Seen>(Seen())

    init(secret: [UInt8], hashing: any DigestHashing, lifetimeSeconds: Int, maxTracked: Int) {
        self.secret = secret
        self.hashing = hashing
        self.lifetimeMilliseconds = Int64(lifetimeSeconds) * 1000
        self.maxTracked = maxTracked
        // Salts only need to differ between nonces; seeding from the secret keeps two nodes apart.
        let mac = hashing.hmacSHA256(key: secret, Array("salt".utf8))
        self.saltBase = mac.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
    }

    func make(realm: String, now: Int64) -> String {
        let s = saltBase &+ salt.add(1, ordering: .relaxed).newValue &* 0x9E37_79B9_7F4A_7C15
        var payload = bigEndianBytes(UInt64(bitPattern: now)) + bigEndianBytes(s)
        payload += mac(payload, realm: realm)
        return hexString(payload)
    }

    func check(_ nonce: String, realm: String, now: Int64) -> Check {
        guard nonce.utf8.count == 64, let bytes = hexBytes(nonce) else { return .invalid }
        let payload = Array(bytes[0..<16])
        guard constantTimeEqual(mac(payload, realm: realm), Array(bytes[16..<32])) else { return .invalid }
        let issued = Int64(bitPattern: payload[0..<8].reduce(0) { $0 << 8 | UInt64($1) })
        if issued > now + 5_000 { return .invalid }
        if now - issued > lifetimeMilliseconds { return .stale }
        return .valid(issuedAt: issued)
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
