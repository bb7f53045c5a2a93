import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// A set of IP networks (`127.0.0.0/8`, `::1`, `2001:db8::/32`), for exempting or
/// trusting sources. IPv4-mapped IPv6 addresses (`::ffff:192.0.2.1`, as a dual-stack
/// socket reports IPv4 peers) match the IPv4 networks.
public struct IPAddressSet: Sendable, Hashable, CustomStringConvertible {
    struct Network: Sendable, Hashable {
        var bytes: [UInt8]
        var prefix: Int
    }

    let networks: [Network]
    /// The networks as given.
    public let specifications: [String]

    /// Parses `ADDRESS` or `ADDRESS/PREFIX` entries; throws naming the first bad one.
    public init(_ specifications: [String]) throws(IPAddressSetError) {
        var nets: [Network] = []
        for spec in specifications {
            let parts = spec.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
            guard let bytes = Self.parse(String(parts[0])) else { throw IPAddressSetError(entry: spec) }
            var prefix = bytes.count * 8
            if parts.count == 2 {
                guard let p = Int(parts[1]), (0...bytes.count * 8).contains(p) else { throw IPAddressSetError(entry: spec) }
                prefix = p
            }
            nets.append(Network(bytes: bytes, prefix: prefix))
        }
        self.networks = nets
        self.specifications = specifications
    }

    /// The empty set.
    public static let empty = IPAddressSet(uncheckedNetworks: [])
    /// Loopback, IPv4 and IPv6.
    public static let loopback = IPAddressSet(uncheckedNetworks: [
        ("127.0.0.0/8", Network(bytes: [127, 0, 0, 0], prefix: 8)),
        ("::1", Network(bytes: [UInt8](repeating: 0, count: 15) + [1], prefix: 128)),
    ])

    private init(uncheckedNetworks: [(String, Network)]) {
        self.networks = uncheckedNetworks.map(\.1)
        self.specifications = uncheckedNetworks.map(\.0)
    }

    public var isEmpty: Bool { networks.isEmpty }

    /// Whether `address` (an IPv4 or IPv6 literal, without brackets) is in one of the networks.
    public func contains(_ address: String) -> Bool {
        guard !networks.isEmpty, var bytes = Self.parse(address) else { return false }
        if bytes.count == 16, bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            bytes = Array(bytes[12..<16])
        }
        for n in networks where n.bytes.count == bytes.count {
            var bits = n.prefix
            var i = 0
            var match = true
            while bits > 0 {
                let mask: UInt8 = bits >= 8 ? 0xff : ~(0xff >> UInt8(bits))
                if bytes[i] & mask != n.bytes[i] & mask {
                    match = false
                    break
                }
                bits -= 8
                i += 1
            }
            if match { return true }
        }
        return false
    }

    public var description: String { specifications.joined(separator: ", ") }

    static func parse(_ text: String) -> [UInt8]? {
        var v4 = in_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            return withUnsafeBytes(of: &v4) { Array($0) }
        }
        var v6 = in6_addr()
        if inet_pton(AF_INET6, text, &v6) == 1 {
            return withUnsafeBytes(of: &v6) { Array($0) }
        }
        return nil
    }
}

/// An entry of an address list that is not an IP address or network.
public struct IPAddressSetError: Error, Sendable, Hashable, CustomStringConvertible {
    public var entry: String
    public init(entry: String) { self.entry = entry }
    public var description: String { "'\(entry)' is not an IP address or ADDRESS/PREFIX network" }
}

/// Counts events per key (a source address, a user) in fixed windows; a key that
/// exceeds the limit within a window is blocked for a cooldown (or the rest of the
/// window). Memory is bounded: at most `capacity` keys are tracked, and a key that
/// cannot be tracked is let through (another limit, such as the per-address one,
/// still applies to it).
public final class WindowLimiter: Sendable {
    /// How many events a window allows and what follows when it is exceeded.
    public struct Policy: Sendable, Hashable {
        /// Events allowed per window; 0 turns the limiter off.
        public var limit: Int
        /// The window length in milliseconds.
        public var windowMilliseconds: Int64
        /// After the limit is exceeded the key stays blocked this long (from the event that exceeded it);
        /// 0 blocks it for the rest of the window. Counting starts afresh when a block ends.
        public var cooldownMilliseconds: Int64

        public init(limit: Int, windowMilliseconds: Int64, cooldownMilliseconds: Int64 = 0) {
            self.limit = limit
            self.windowMilliseconds = max(1, windowMilliseconds)
            self.cooldownMilliseconds = max(0, cooldownMilliseconds)
        }

        public static let off = Policy(limit: 0, windowMilliseconds: 1_000)
    }

    /// What an event met.
    public enum Decision: Sendable, Hashable {
        case allowed
        /// Refused; `firstInWindow` is true only for the event that started the block (log that one).
        case blocked(until: Int64, firstInWindow: Bool)

        public var isAllowed: Bool { self == .allowed }
    }

    struct Entry: Sendable {
        var windowStart: Int64
        var count: Int
        var blockedUntil: Int64
    }

    public let policy: Policy
    public let capacity: Int
    struct Table: Sendable {
        var entries: [String: Entry] = [:]
        /// A full table is pruned at most once per this time, so a flood of new keys costs O(1) each.
        var nextPrune: Int64 = .min
    }

    private let state = Mutex<Table>(Table())

    public init(policy: Policy, capacity: Int = 65_536) {
        self.policy = policy
        self.capacity = max(1, capacity)
    }

    public var isEnabled: Bool { policy.limit > 0 }

    /// Records one event for `key` at `now` (milliseconds) and says whether it is allowed.
    public func record(_ key: String, now: Int64) -> Decision {
        guard policy.limit > 0 else { return .allowed }
        return state.withLock { t in
            if var e = t.entries[key] {
                if now < e.blockedUntil { return .blocked(until: e.blockedUntil, firstInWindow: false) }
                // A new window, or a block that has ended: counting starts again.
                if e.blockedUntil != 0 || now - e.windowStart >= policy.windowMilliseconds {
                    e.windowStart = now
                    e.count = 0
                    e.blockedUntil = 0
                }
                e.count += 1
                if e.count > policy.limit {
                    // Blocked for the cooldown, or (without one) for the rest of the window.
                    e.blockedUntil = policy.cooldownMilliseconds > 0 ? now + policy.cooldownMilliseconds
                        : e.windowStart + policy.windowMilliseconds
                    t.entries[key] = e
                    return .blocked(until: e.blockedUntil, firstInWindow: true)
                }
                t.entries[key] = e
                return .allowed
            }
            if t.entries.count >= capacity && now >= t.nextPrune {
                let window = policy.windowMilliseconds
                t.entries = t.entries.filter { _, e in now < e.blockedUntil || now - e.windowStart < window }
                t.nextPrune = now + max(1, window / 4)
            }
            guard t.entries.count < capacity else { return .allowed }
            t.entries[key] = Entry(windowStart: now, count: 1, blockedUntil: 0)
            return .allowed
        }
    }

    /// Whether `key` is blocked at `now`, without counting an event.
    public func isBlocked(_ key: String, now: Int64) -> Bool {
        guard policy.limit > 0 else { return false }
        return state.withLock { t in
            guard let e = t.entries[key] else { return false }
            return now < e.blockedUntil
        }
    }

    /// Forgets `key` (after a success that should clear its failures, or by an operator).
    public func reset(_ key: String) {
        _ = state.withLock { $0.entries.removeValue(forKey: key) }
    }

    /// Keys tracked now.
    public var trackedCount: Int { state.withLock { $0.entries.count } }
}
