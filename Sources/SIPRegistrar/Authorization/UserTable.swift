/// A digest hash algorithm SIP uses (RFC 8760: SHA-256 and MD5; RFC 7616 names).
public enum DigestAlgorithm: String, Sendable, Hashable, CaseIterable {
    case sha256 = "SHA-256"
    case md5 = "MD5"

    /// Parses an `algorithm=` value (case-insensitive); nil for `-sess` and unknown ones.
    public init?(token: some StringProtocol) {
        switch token.lowercased() {
        case "sha-256": self = .sha256
        case "md5": self = .md5
        default: return nil
        }
    }

    /// The users file's key: `sha-256` or `md5`.
    public var fileKey: String { rawValue.lowercased() }
    /// Hex characters in a digest.
    public var hexLength: Int { self == .sha256 ? 64 : 32 }
}

/// The cryptographic primitives digest authentication needs. The registrar depends
/// on the message layer only; the server passes the OpenSSL-backed implementation
/// (`OpenSSLDigestHashing` in the server module).
public protocol DigestHashing: Sendable {
    func hash(_ algorithm: DigestAlgorithm, _ bytes: [UInt8]) -> [UInt8]
    func hmacSHA256(key: [UInt8], _ message: [UInt8]) -> [UInt8]
}

extension DigestHashing {
    /// Lower-case hex of the digest of a string's UTF-8.
    func hexHash(_ algorithm: DigestAlgorithm, _ text: String) -> String {
        hexString(hash(algorithm, Array(text.utf8)))
    }

    /// `H(user:realm:password)` in hex: what the users file stores (RFC 7616 3.4.2).
    public func ha1(_ algorithm: DigestAlgorithm, user: String, realm: String, password: String) -> String {
        hexHash(algorithm, user + ":" + realm + ":" + password)
    }
}

func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    var out: [UInt8] = []
    out.reserveCapacity(bytes.underestimatedCount * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// One user of the users file: who may authenticate, with which HA1 per algorithm,
/// and which addresses of record besides `user@realm` it may register.
public struct DigestUser: Sendable, Hashable {
    /// The user name (the `username` of the digest credentials).
    public var user: String
    /// The realm: the domain of the user's address of record.
    public var realm: String
    /// Lower-case hex HA1 per algorithm. No plaintext password is ever stored.
    public var ha1: [DigestAlgorithm: String]
    /// Further addresses of record (`user@domain`) this user may register.
    public var aliases: [String]

    /// A user; `realm` is stored lower-cased.
    public init(user: String, realm: String, ha1: [DigestAlgorithm: String], aliases: [String] = []) {
        self.user = user
        self.realm = realm.lowercased()
        self.ha1 = ha1
        self.aliases = aliases
    }

    /// The user's own address of record.
    public var aor: String { user + "@" + realm }

    /// Whether this user may register `aor` (normalized `user@host`).
    public func owns(aor candidate: String) -> Bool {
        if Self.sameAOR(candidate, aor) { return true }
        return aliases.contains { Self.sameAOR(candidate, $0) }
    }

    /// AORs compare with the user part exact and the host case-insensitive (RFC 3261 19.1.4).
    static func sameAOR(_ a: String, _ b: String) -> Bool {
        guard let ai = a.lastIndex(of: "@"), let bi = b.lastIndex(of: "@") else { return a.lowercased() == b.lowercased() }
        return a[..<ai] == b[..<bi] && a[ai...].lowercased() == b[bi...].lowercased()
    }
}

/// The users file: one user per line,
///
/// ```
/// # user@realm   hashes                         [aliases]
/// alice@example.com md5=<32 hex> sha-256=<64 hex> aliases=alice@example.org,al@example.com
/// ```
///
/// Blank lines and `#` comments are ignored. `sip-registrar passwd` writes it.
public struct UserTable: Sendable, Hashable {
    private var byRealm: [String: [String: DigestUser]] = [:]
    /// The users in file order (for writing the file back).
    public private(set) var users: [DigestUser] = []

    /// An empty table: nobody can authenticate.
    public init() {}

    /// A table of `users`; a later entry for the same user and realm replaces an earlier one.
    public init(_ users: [DigestUser]) {
        for u in users { upsert(u) }
    }

    /// How many users the table holds.
    public var count: Int { users.count }

    /// The user `user` of `realm` (realm case-insensitive), if any.
    public func lookup(user: String, realm: String) -> DigestUser? {
        byRealm[realm.lowercased()]?[user]
    }

    /// Adds a user or replaces the one with the same user and realm (keeping its place).
    public mutating func upsert(_ u: DigestUser) {
        if byRealm[u.realm]?[u.user] != nil, let i = users.firstIndex(where: { $0.user == u.user && $0.realm == u.realm }) {
            users[i] = u
        } else {
            users.append(u)
        }
        byRealm[u.realm, default: [:]][u.user] = u
    }

    /// Parses the file's text; the error names the line.
    public static func parse(_ text: String) throws(UserTableError) -> UserTable {
        var table = UserTable()
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = trimmedLine(rawLine)
            if line.isEmpty || line.hasPrefix("#") { continue }
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard let id = fields.first, let at = id.lastIndex(of: "@"), at != id.startIndex, id.index(after: at) != id.endIndex else {
                throw UserTableError(line: lineNumber, message: "expected user@realm first")
            }
            var user = DigestUser(user: String(id[..<at]), realm: String(id[id.index(after: at)...]), ha1: [:])
            for f in fields.dropFirst() {
                guard let eq = f.firstIndex(of: "=") else {
                    throw UserTableError(line: lineNumber, message: "expected key=value, got '\(f)'")
                }
                let key = f[..<eq].lowercased()
                let value = String(f[f.index(after: eq)...])
                if key == "aliases" {
                    user.aliases = value.split(separator: ",").map(String.init)
                    for a in user.aliases where !a.contains("@") {
                        throw UserTableError(line: lineNumber, message: "alias '\(a)' is not user@domain")
                    }
                    continue
                }
                guard let algorithm = DigestAlgorithm.allCases.first(where: { $0.fileKey == key }) else {
                    throw UserTableError(line: lineNumber, message: "unknown key '\(key)' (expected md5, sha-256 or aliases)")
                }
                let hex = value.lowercased()
                guard hex.utf8.count == algorithm.hexLength, hex.utf8.allSatisfy({ isHexDigit($0) }) else {
                    throw UserTableError(line: lineNumber, message: "\(key) must be \(algorithm.hexLength) hex digits")
                }
                user.ha1[algorithm] = hex
            }
            guard !user.ha1.isEmpty else {
                throw UserTableError(line: lineNumber, message: "no hash for \(user.aor) (md5= or sha-256=)")
            }
            table.upsert(user)
        }
        return table
    }

    /// The file's text.
    public var serialized: String {
        var out = "# sip-registrar users: user@realm md5=HA1 sha-256=HA1 [aliases=AOR,...]\n"
        out += "# HA1 = H(user:realm:password); written by `sip-registrar passwd`.\n"
        for u in users {
            out += u.aor
            for a in DigestAlgorithm.allCases.reversed() {
                if let h = u.ha1[a] { out += " \(a.fileKey)=\(h)" }
            }
            if !u.aliases.isEmpty { out += " aliases=" + u.aliases.joined(separator: ",") }
            out += "\n"
        }
        return out
    }
}

/// A users file line that cannot be read.
public struct UserTableError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The line number, from 1.
    public var line: Int
    /// What is wrong with the line.
    public var message: String
    /// `line N: message`.
    public var description: String { "line \(line): \(message)" }
}

func isHexDigit(_ b: UInt8) -> Bool {
    (b >= 0x30 && b <= 0x39) || (b >= 0x61 && b <= 0x66) || (b >= 0x41 && b <= 0x46)
}

/// A line without surrounding blanks (and a CR left by Windows line ends).
func trimmedLine(_ s: Substring) -> Substring {
    func blank(_ c: Character) -> Bool { c == " " || c == "\t" || c == "\r" || c == "\r\n" }
    guard let first = s.firstIndex(where: { !blank($0) }), let last = s.lastIndex(where: { !blank($0) }) else { return s[s.endIndex...] }
    return s[first...last]
}
