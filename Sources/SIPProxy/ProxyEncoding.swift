/// FNV-1a, 64 bits: a stable, non-cryptographic hash for branch values (RFC 3261 16.6
/// step 8 leaves the algorithm to the implementation; it only has to be stable).
struct FNV1a64: Sendable {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ bytes: some Sequence<UInt8>) {
        for b in bytes {
            value ^= UInt64(b)
            value = value &* 0x0000_0100_0000_01B3
        }
    }

    /// Adds a field followed by a separator byte that no SIP header text contains, so that
    /// ("ab", "c") and ("a", "bc") hash differently.
    mutating func addField(_ text: some StringProtocol) {
        add(text.utf8)
        add(CollectionOfOne(0))
    }
}

/// Hex, base64url (RFC 4648 5, no padding) and a constant-time comparison, without Foundation.
enum ProxyEncoding {
    private static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_".utf8)
    private static let reverse: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (i, c) in alphabet.enumerated() { table[Int(c)] = UInt8(i) }
        return table
    }()

    /// 16 hex digits, zero-padded.
    static func hex(_ v: UInt64) -> String {
        String(unsafeUninitializedCapacity: 16) { out in
            writeHex(v, into: out, at: 0)
            return 16
        }
    }

    /// Writes `v` as 16 lowercase hex digits, zero-padded, at `out[at..<at + 16]`.
    static func writeHex(_ v: UInt64, into out: UnsafeMutableBufferPointer<UInt8>, at: Int) {
        var x = v
        for i in stride(from: at + 15, through: at, by: -1) {
            let nibble = UInt8(truncatingIfNeeded: x & 0xF)
            out[i] = nibble < 10 ? 48 + nibble : 87 + nibble
            x >>= 4
        }
    }

    static func base64url(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        out.reserveCapacity((bytes.count * 4 + 2) / 3)
        var i = 0
        while i + 3 <= bytes.count {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2])
            for shift in [18, 12, 6, 0] { out.append(alphabet[Int((n >> UInt32(shift)) & 63)]) }
            i += 3
        }
        let rest = bytes.count - i
        if rest == 1 {
            let n = UInt32(bytes[i]) << 16
            out.append(alphabet[Int((n >> 18) & 63)])
            out.append(alphabet[Int((n >> 12) & 63)])
        } else if rest == 2 {
            let n = UInt32(bytes[i]) << 16 | UInt32(bytes[i + 1]) << 8
            out.append(alphabet[Int((n >> 18) & 63)])
            out.append(alphabet[Int((n >> 12) & 63)])
            out.append(alphabet[Int((n >> 6) & 63)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Decodes unpadded base64url; nil on any byte outside the alphabet or an impossible length.
    static func decodeBase64url(_ text: some StringProtocol) -> [UInt8]? {
        let u = Array(text.utf8)
        guard u.count % 4 != 1 else { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(u.count * 3 / 4)
        var acc: UInt32 = 0
        var bits = 0
        for c in u {
            let v = reverse[Int(c)]
            guard v != 0xFF else { return nil }
            acc = acc << 6 | UInt32(v)
            bits += 6
            if bits >= 8 {
                bits -= 8
                out.append(UInt8((acc >> UInt32(bits)) & 0xFF))
            }
        }
        // Leftover bits must be zero, so that each token has exactly one spelling.
        guard acc & ((1 << UInt32(bits)) - 1) == 0 else { return nil }
        return out
    }

    /// Compares two byte strings in time that depends only on their lengths.
    static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
