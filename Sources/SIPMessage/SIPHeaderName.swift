/// A header field name. Comparison is case-insensitive, and a compact form
/// (`v`, `f`, `t`, `i`, `m`, `l`, ...) equals its long form (RFC 3261 7.3.3, 20).
public struct SIPHeaderName: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// Index into the table of known names; 0 for an unknown name.
    @usableFromInline let id: UInt8
    /// The canonical spelling for a known name, else the name as written.
    public let name: String

    /// A name from its text, in any case; a known compact form becomes the long name.
    public init(_ text: String) {
        let id = text.utf8.withContiguousStorageIfAvailable { SIPHeaderName.knownID(UnsafeRawBufferPointer($0)) }
            ?? Array(text.utf8).withUnsafeBytes { SIPHeaderName.knownID($0) }
        self.id = id
        self.name = id == 0 ? text : SIPHeaderName.table[Int(id)].canonical
    }

    /// A name from a literal: `let n: SIPHeaderName = "X-Account"`.
    public init(stringLiteral value: String) { self.init(value) }

    @usableFromInline init(knownID: UInt8) {
        self.id = knownID
        self.name = SIPHeaderName.table[Int(knownID)].canonical
    }

    /// Builds a name from raw bytes of a header line (ASCII token characters).
    init(bytes: UnsafeRawBufferPointer) {
        let id = SIPHeaderName.knownID(bytes)
        self.id = id
        self.name = id == 0 ? String(decoding: bytes, as: UTF8.self) : SIPHeaderName.table[Int(id)].canonical
    }

    /// The canonical spelling (or the name as written, when unknown).
    public var description: String { name }

    /// Whether two names are the same header: case-insensitive, a compact form equal to its long form.
    public static func == (lhs: SIPHeaderName, rhs: SIPHeaderName) -> Bool {
        if lhs.id != 0 || rhs.id != 0 { return lhs.id == rhs.id }
        return asciiCaseInsensitiveEquals(lhs.name, rhs.name)
    }

    /// Hashes consistently with `==`: case and compact form do not change the hash.
    public func hash(into hasher: inout Hasher) {
        if id != 0 {
            hasher.combine(id)
        } else {
            hasher.combine(0 as UInt8)
            for b in name.utf8 { hasher.combine(ASCII.lower(b)) }
        }
    }

    // MARK: Known names

    struct Entry {
        let canonical: String
        let compact: UInt8?  // lowercase letter
    }

    /// Index 0 is the unknown placeholder.
    static let table: [Entry] = [
        Entry(canonical: "", compact: nil),
        Entry(canonical: "Via", compact: 118),  // v
        Entry(canonical: "From", compact: 102),  // f
        Entry(canonical: "To", compact: 116),  // t
        Entry(canonical: "Call-ID", compact: 105),  // i
        Entry(canonical: "CSeq", compact: nil),
        Entry(canonical: "Contact", compact: 109),  // m
        Entry(canonical: "Content-Length", compact: 108),  // l
        Entry(canonical: "Content-Type", compact: 99),  // c
        Entry(canonical: "Content-Encoding", compact: 101),  // e
        Entry(canonical: "Subject", compact: 115),  // s
        Entry(canonical: "Supported", compact: 107),  // k
        Entry(canonical: "Expires", compact: nil),
        Entry(canonical: "Min-Expires", compact: nil),
        Entry(canonical: "Max-Forwards", compact: nil),
        Entry(canonical: "Require", compact: nil),
        Entry(canonical: "Proxy-Require", compact: nil),
        Entry(canonical: "Unsupported", compact: nil),
        Entry(canonical: "Route", compact: nil),
        Entry(canonical: "Record-Route", compact: nil),
        Entry(canonical: "Path", compact: nil),
        Entry(canonical: "User-Agent", compact: nil),
        Entry(canonical: "Server", compact: nil),
        Entry(canonical: "Date", compact: nil),
        Entry(canonical: "Retry-After", compact: nil),
        Entry(canonical: "Authorization", compact: nil),
        Entry(canonical: "WWW-Authenticate", compact: nil),
        Entry(canonical: "Proxy-Authenticate", compact: nil),
        Entry(canonical: "Proxy-Authorization", compact: nil),
        Entry(canonical: "Authentication-Info", compact: nil),
        Entry(canonical: "Warning", compact: nil),
        Entry(canonical: "Allow", compact: nil),
        Entry(canonical: "Accept", compact: nil),
        Entry(canonical: "Accept-Encoding", compact: nil),
        Entry(canonical: "Accept-Language", compact: nil),
        Entry(canonical: "Event", compact: 111),  // o
        Entry(canonical: "Allow-Events", compact: 117),  // u
        Entry(canonical: "Refer-To", compact: 114),  // r
        Entry(canonical: "Referred-By", compact: 98),  // b
        Entry(canonical: "Session-Expires", compact: 120),  // x
        Entry(canonical: "Reject-Contact", compact: 106),  // j
        Entry(canonical: "Request-Disposition", compact: 100),  // d
        Entry(canonical: "Accept-Contact", compact: 97),  // a
        Entry(canonical: "Identity", compact: 121),  // y
        Entry(canonical: "Identity-Info", compact: 110),  // n
        Entry(canonical: "Timestamp", compact: nil),
        Entry(canonical: "Organization", compact: nil),
        Entry(canonical: "Service-Route", compact: nil),
        Entry(canonical: "MIME-Version", compact: nil),
        Entry(canonical: "Content-Disposition", compact: nil),
        Entry(canonical: "Content-Language", compact: nil),
        Entry(canonical: "Reason", compact: nil),
        Entry(canonical: "Priority", compact: nil),
    ]

    /// Lowercased known names grouped by length for a quick case-insensitive match.
    static let byLength: [[(bytes: [UInt8], id: UInt8)]] = {
        var groups = Array(repeating: [(bytes: [UInt8], id: UInt8)](), count: 24)
        for (i, e) in table.enumerated() where i > 0 {
            let lower = Array(e.canonical.utf8).map(ASCII.lower)
            groups[lower.count].append((lower, UInt8(i)))
        }
        return groups
    }()

    static let compactIDs: [UInt8] = {
        var ids = Array(repeating: UInt8(0), count: 128)
        for (i, e) in table.enumerated() where i > 0 {
            if let c = e.compact { ids[Int(c)] = UInt8(i) }
        }
        return ids
    }()

    static func knownID(_ bytes: UnsafeRawBufferPointer) -> UInt8 {
        let n = bytes.count
        if n == 1 {
            let c = ASCII.lower(bytes[0])
            return c < 128 ? compactIDs[Int(c)] : 0
        }
        guard n > 0, n < byLength.count else { return 0 }
        outer: for (candidate, id) in byLength[n] {
            for k in 0..<n where ASCII.lower(bytes[k]) != candidate[k] { continue outer }
            return id
        }
        return 0
    }

    /// `Via` (RFC 3261 20.42, compact form `v`).
    public static let via = SIPHeaderName(knownID: 1)
    /// `From` (RFC 3261 20.20, compact form `f`).
    public static let from = SIPHeaderName(knownID: 2)
    /// `To` (RFC 3261 20.39, compact form `t`).
    public static let to = SIPHeaderName(knownID: 3)
    /// `Call-ID` (RFC 3261 20.8, compact form `i`).
    public static let callID = SIPHeaderName(knownID: 4)
    /// `CSeq` (RFC 3261 20.16).
    public static let cseq = SIPHeaderName(knownID: 5)
    /// `Contact` (RFC 3261 20.10, compact form `m`).
    public static let contact = SIPHeaderName(knownID: 6)
    /// `Content-Length` (RFC 3261 20.14, compact form `l`).
    public static let contentLength = SIPHeaderName(knownID: 7)
    /// `Content-Type` (RFC 3261 20.15, compact form `c`).
    public static let contentType = SIPHeaderName(knownID: 8)
    /// `Content-Encoding` (RFC 3261 20.12, compact form `e`).
    public static let contentEncoding = SIPHeaderName(knownID: 9)
    /// `Subject` (RFC 3261 20.36, compact form `s`).
    public static let subject = SIPHeaderName(knownID: 10)
    /// `Supported` (RFC 3261 20.37, compact form `k`).
    public static let supported = SIPHeaderName(knownID: 11)
    /// `Expires` (RFC 3261 20.19).
    public static let expires = SIPHeaderName(knownID: 12)
    /// `Min-Expires` (RFC 3261 20.23).
    public static let minExpires = SIPHeaderName(knownID: 13)
    /// `Max-Forwards` (RFC 3261 20.22).
    public static let maxForwards = SIPHeaderName(knownID: 14)
    /// `Require` (RFC 3261 20.32).
    public static let require = SIPHeaderName(knownID: 15)
    /// `Proxy-Require` (RFC 3261 20.29).
    public static let proxyRequire = SIPHeaderName(knownID: 16)
    /// `Unsupported` (RFC 3261 20.40).
    public static let unsupported = SIPHeaderName(knownID: 17)
    /// `Route` (RFC 3261 20.34).
    public static let route = SIPHeaderName(knownID: 18)
    /// `Record-Route` (RFC 3261 20.30).
    public static let recordRoute = SIPHeaderName(knownID: 19)
    /// `Path` (RFC 3327).
    public static let path = SIPHeaderName(knownID: 20)
    /// `User-Agent` (RFC 3261 20.41).
    public static let userAgent = SIPHeaderName(knownID: 21)
    /// `Server` (RFC 3261 20.35).
    public static let server = SIPHeaderName(knownID: 22)
    /// `Date` (RFC 3261 20.17).
    public static let date = SIPHeaderName(knownID: 23)
    /// `Retry-After` (RFC 3261 20.33).
    public static let retryAfter = SIPHeaderName(knownID: 24)
    /// `Authorization` (RFC 3261 20.7).
    public static let authorization = SIPHeaderName(knownID: 25)
    /// `WWW-Authenticate` (RFC 3261 20.44).
    public static let wwwAuthenticate = SIPHeaderName(knownID: 26)
    /// `Proxy-Authenticate` (RFC 3261 20.27).
    public static let proxyAuthenticate = SIPHeaderName(knownID: 27)
    /// `Proxy-Authorization` (RFC 3261 20.28).
    public static let proxyAuthorization = SIPHeaderName(knownID: 28)
    /// `Authentication-Info` (RFC 3261 20.6).
    public static let authenticationInfo = SIPHeaderName(knownID: 29)
    /// `Warning` (RFC 3261 20.43).
    public static let warning = SIPHeaderName(knownID: 30)
    /// `Allow` (RFC 3261 20.5).
    public static let allow = SIPHeaderName(knownID: 31)
    /// `Accept` (RFC 3261 20.1).
    public static let accept = SIPHeaderName(knownID: 32)
    /// `Event` (RFC 6665, compact form `o`).
    public static let event = SIPHeaderName(knownID: 35)
    /// `Service-Route` (RFC 3608).
    public static let serviceRoute = SIPHeaderName(knownID: 47)
}
