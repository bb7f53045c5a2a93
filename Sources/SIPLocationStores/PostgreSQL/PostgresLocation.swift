/// Where a PostgreSQL store connects: parsed from `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?sslmode=...]`.
/// The password should come from the environment or a file, not the URL.
public struct PostgresLocation: Sendable, Hashable {
    public var user: String
    public var password: String?
    public var host: String
    public var port: Int
    public var database: String
    /// `disable`, `prefer` (the default) or `require`.
    public var sslMode: String
    /// Whether the URL said `sslmode=` at all.
    public var sslModeGiven = false

    /// A host other than this machine without `sslmode`: `prefer` stays the default (a database
    /// without TLS keeps working), but start-up warns, since `prefer` falls back to a plain
    /// connection whenever TLS is refused, which a man in the middle can arrange.
    public var unencryptedToAnotherHost: Bool {
        !sslModeGiven && !Self.isLoopback(host)
    }

    /// `localhost`, 127.0.0.0/8, `::1` (and a Unix socket folder, which never leaves the machine).
    static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased()
        if h == "localhost" || h.hasSuffix(".localhost") || h.hasPrefix("/") || h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts[0] == "127" && parts.allSatisfy { UInt8($0) != nil }
    }

    public init?(url: String) {
        var rest = Substring(url)
        if rest.hasPrefix("postgres://") { rest = rest.dropFirst(11) } else if rest.hasPrefix("postgresql://") { rest = rest.dropFirst(13) } else { return nil }
        var query = ""
        if let q = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: q)...])
            rest = rest[..<q]
        }
        guard let slash = rest.firstIndex(of: "/") else { return nil }
        database = String(rest[rest.index(after: slash)...])
        var authority = rest[..<slash]
        user = "postgres"
        password = nil
        if let at = authority.lastIndex(of: "@") {
            let info = authority[..<at]
            if let colon = info.firstIndex(of: ":") {
                user = Self.decode(info[..<colon])
                password = Self.decode(info[info.index(after: colon)...])
            } else {
                user = Self.decode(info)
            }
            authority = authority[authority.index(after: at)...]
        }
        port = 5432
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            host = String(authority[authority.index(after: authority.startIndex)..<close])
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") {
                guard let p = Int(after.dropFirst()) else { return nil }
                port = p
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let p = Int(authority[authority.index(after: colon)...]) else { return nil }
            port = p
        } else {
            host = String(authority)
        }
        sslMode = "prefer"
        for pair in query.split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1)
            if kv.count == 2 && kv[0] == "sslmode" {
                sslMode = String(kv[1])
                sslModeGiven = true
            }
        }
        guard !host.isEmpty, !database.isEmpty, !user.isEmpty, (1...65_535).contains(port),
              ["disable", "prefer", "require"].contains(sslMode) else { return nil }
    }

    static func decode(_ s: Substring) -> String { s.removingPercentEncoding() }
}

extension Substring {
    /// Decodes `%XX` escapes (a malformed escape stays as it is).
    func removingPercentEncoding() -> String {
        var out: [UInt8] = []
        var i = utf8.startIndex
        while i != utf8.endIndex {
            let c = utf8[i]
            if c == UInt8(ascii: "%"), let h1 = utf8.index(i, offsetBy: 1, limitedBy: utf8.endIndex), h1 != utf8.endIndex,
               let h2 = utf8.index(h1, offsetBy: 1, limitedBy: utf8.endIndex), h2 != utf8.endIndex,
               let v = UInt8(String(decoding: [utf8[h1], utf8[h2]], as: UTF8.self), radix: 16) {
                out.append(v)
                i = utf8.index(after: h2)
            } else {
                out.append(c)
                i = utf8.index(after: i)
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
