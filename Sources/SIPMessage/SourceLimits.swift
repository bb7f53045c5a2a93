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

    /// Whether the set holds no network (it then contains no address).
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

    /// The networks as configured, comma-separated.
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
    /// The entry as written.
    public var entry: String
    /// An error for `entry`.
    public init(entry: String) { self.entry = entry }
    /// A sentence naming the entry.
    public var description: String { "'\(entry)' is not an IP address or ADDRESS/PREFIX network" }
}

/// The key a per-source limit counts a peer under.
///
/// An IPv4 address counts on its own. An IPv6 address counts by its /64: one
/// subscriber line or host is routinely given a whole /64 (RFC 6177, RFC 7934),
/// so per-address counting would hand a single attacker 2^64 fresh keys. An
/// IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as a dual-stack socket reports
/// IPv4 peers) counts as the IPv4 address, so both forms share one budget.
public enum SourceKey {
    /// `192.0.2.1` → `192.0.2.1`; `2001:db8:1:2:a:b:c:d` → `2001:db8:1:2::/64`;
    /// `::ffff:192.0.2.1` → `192.0.2.1`. Anything else (not an IP address) is returned as it is.
    public static func limitKey(forIP ip: String) -> String {
        guard ip.utf8.contains(UInt8(ascii: ":")) else { return ip }
        guard let bytes = IPAddressSet.parse(ip), bytes.count == 16 else { return ip }
        if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xff, bytes[11] == 0xff {
            return "\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])"
        }
        var out = ""
        for group in 0..<4 {
            let value = UInt16(bytes[2 * group]) << 8 | UInt16(bytes[2 * group + 1])
            out += String(value, radix: 16) + ":"
        }
        return out + ":/64"
    }
}

/// A map holding at most `capacity` entries; inserting into a full one forgets the
/// least recently used entry. Every operation is O(1) (a dictionary into the nodes
/// of a doubly linked recency list kept in one array), so a flood of new keys costs
/// constant work each and never lets a key go untracked.
public struct LRUTable<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    struct Node: Sendable {
        var key: Key
        var value: Value
        var newer: Int
        var older: Int
    }

    private var index: [Key: Int] = [:]
    private var nodes: [Node] = []
    /// Slots of removed entries, reused before the array grows.
    private var free: [Int] = []
    /// Most and least recently used node; -1 when empty.
    private var newest = -1
    private var oldest = -1
    /// The most entries held (at least 1).
    public let capacity: Int

    /// An empty table for at most `capacity` entries (at least 1).
    public init(capacity: Int) {
        self.capacity = max(1, capacity)
    }

    /// The number of entries held.
    public var count: Int { index.count }

    /// The value for `key`, which becomes the most recently used entry.
    public mutating func value(forKey key: Key) -> Value? {
        guard let i = index[key] else { return nil }
        touch(i)
        return nodes[i].value
    }

    /// Whether `key` is present, without changing its recency.
    public func contains(_ key: Key) -> Bool { index[key] != nil }

    /// Runs `body` on the value for `key` (inserting `make()` first when absent, evicting the
    /// least recently used entry if the table is full); `key` becomes the most recently used.
    public mutating func modify<R>(_ key: Key, orInsert make: () -> Value, _ body: (inout Value) -> R) -> R {
        if let i = index[key] {
            touch(i)
            return body(&nodes[i].value)
        }
        let i: Int
        if index.count >= capacity, oldest >= 0 {
            // Full: the least recently used entry makes room (its slot is reused).
            i = oldest
            unlink(i)
            index.removeValue(forKey: nodes[i].key)
            nodes[i].key = key
            nodes[i].value = make()
        } else if let slot = free.popLast() {
            i = slot
            nodes[i].key = key
            nodes[i].value = make()
        } else {
            i = nodes.count
            nodes.append(Node(key: key, value: make(), newer: -1, older: -1))
        }
        index[key] = i
        pushNewest(i)
        return body(&nodes[i].value)
    }

    /// Sets the value for `key` (most recently used), evicting the least recently used entry if full.
    public mutating func set(_ key: Key, _ value: Value) {
        modify(key, orInsert: { value }) { $0 = value }
    }

    /// Forgets `key`.
    @discardableResult
    public mutating func removeValue(forKey key: Key) -> Value? {
        guard let i = index.removeValue(forKey: key) else { return nil }
        unlink(i)
        free.append(i)
        return nodes[i].value
    }

    /// The keys from the most to the least recently used.
    public var keysByRecency: [Key] {
        var out: [Key] = []
        out.reserveCapacity(index.count)
        var i = newest
        while i >= 0 {
            out.append(nodes[i].key)
            i = nodes[i].older
        }
        return out
    }

    private mutating func touch(_ i: Int) {
        guard newest != i else { return }
        unlink(i)
        pushNewest(i)
    }

    private mutating func unlink(_ i: Int) {
        let newer = nodes[i].newer, older = nodes[i].older
        if newer >= 0 { nodes[newer].older = older } else { newest = older }
        if older >= 0 { nodes[older].newer = newer } else { oldest = newer }
        nodes[i].newer = -1
        nodes[i].older = -1
    }

    private mutating func pushNewest(_ i: Int) {
        nodes[i].newer = -1
        nodes[i].older = newest
        if newest >= 0 { nodes[newest].newer = i } else { oldest = i }
        newest = i
    }
}

/// Counts events per key (a source address, a user) in fixed windows; a key that
/// exceeds the limit within a window is blocked for a cooldown (or the rest of the
/// window). Memory is bounded: at most `capacity` keys are tracked, and a new key
/// arriving at a full table takes the place of the least recently seen one, so the
/// limiter fails closed (every key is counted) at O(1) per event. Callers key
/// sources with ``SourceKey/limitKey(forIP:)``.
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

        /// A policy; the window is at least 1 ms and the cooldown not negative.
        public init(limit: Int, windowMilliseconds: Int64, cooldownMilliseconds: Int64 = 0) {
            self.limit = limit
            self.windowMilliseconds = max(1, windowMilliseconds)
            self.cooldownMilliseconds = max(0, cooldownMilliseconds)
        }

        /// No limit: every event is allowed.
        public static let off = Policy(limit: 0, windowMilliseconds: 1_000)
    }

    /// What an event met.
    public enum Decision: Sendable, Hashable {
        /// Counted and allowed.
        case allowed
        /// Refused; `firstInWindow` is true only for the event that started the block (log that one).
        case blocked(until: Int64, firstInWindow: Bool)

        /// Whether the event was allowed.
        public var isAllowed: Bool { self == .allowed }
    }

    struct Entry: Sendable {
        var windowStart: Int64
        var count: Int
        var blockedUntil: Int64
    }

    /// The policy every key is held to.
    public let policy: Policy
    /// The most keys tracked at once.
    public let capacity: Int

    private let state: Mutex<LRUTable<String, Entry>>

    /// A limiter applying `policy` to at most `capacity` keys (at least 1).
    public init(policy: Policy, capacity: Int = 65_536) {
        self.policy = policy
        self.capacity = max(1, capacity)
        self.state = Mutex(LRUTable(capacity: capacity))
    }

    /// Whether the policy limits anything (a limit above 0).
    public var isEnabled: Bool { policy.limit > 0 }

    /// Records one event for `key` at `now` (milliseconds) and says whether it is allowed.
    public func record(_ key: String, now: Int64) -> Decision {
        guard policy.limit > 0 else { return .allowed }
        let policy = self.policy
        return state.withLock { t in
            t.modify(key, orInsert: { Entry(windowStart: now, count: 0, blockedUntil: 0) }) { e in
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
                    return .blocked(until: e.blockedUntil, firstInWindow: true)
                }
                return .allowed
            }
        }
    }

    /// Whether `key` is blocked at `now`, without counting an event (a tracked key counts as seen).
    public func isBlocked(_ key: String, now: Int64) -> Bool {
        guard policy.limit > 0 else { return false }
        return state.withLock { t in
            guard let e = t.value(forKey: key) else { return false }
            return now < e.blockedUntil
        }
    }

    /// Forgets `key` (after a success that should clear its failures, or by an operator).
    public func reset(_ key: String) {
        _ = state.withLock { $0.removeValue(forKey: key) }
    }

    /// Keys tracked now.
    public var trackedCount: Int { state.withLock { $0.count } }
}
