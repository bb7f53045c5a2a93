import Synchronization

// Typed accessors for the header fields a registrar reads and writes.
// Each throws a `SIPParseError` naming the header when its value is malformed,
// and returns nil (or an empty list) when the header is absent.

extension SIPHeaders {
    /// Parses delta-seconds (RFC 3261 25.1); values beyond 2^32-1 are clamped as the RFC allows.
    public static func parseDeltaSeconds(_ text: Substring) -> Int? {
        let u = text.trimmingSIPWhitespace().utf8
        guard !u.isEmpty, u.count <= 20 else { return nil }
        var n: UInt64 = 0
        for b in u {
            guard ASCII.isDigit(b) else { return nil }
            n = n &* 10 &+ UInt64(b - 48)
            if n > UInt64(UInt32.max) { n = UInt64(UInt32.max) }
        }
        return Int(n)
    }

    private func integer(_ name: SIPHeaderName) throws(SIPParseError) -> Int? {
        guard let v = self[name] else { return nil }
        guard let n = SIPHeaders.parseDeltaSeconds(v) else { throw SIPParseError(.invalidHeaderValue(name.name)) }
        return n
    }

    private func nameAddress(_ name: SIPHeaderName) throws(SIPParseError) -> NameAddress? {
        guard let v = self[name] else { return nil }
        guard let a = NameAddress.parse(v) else { throw SIPParseError(.invalidHeaderValue(name.name)) }
        return a
    }

    private func nameAddressList(_ name: SIPHeaderName) throws(SIPParseError) -> [NameAddress] {
        var result: [NameAddress] = []
        for v in splitValues(name) {
            guard let a = NameAddress.parse(v) else { throw SIPParseError(.invalidHeaderValue(name.name)) }
            result.append(a)
        }
        return result
    }

    private func tokenList(_ name: SIPHeaderName) -> [String] {
        splitValues(name).map { String($0) }
    }

    /// All Via values, top first.
    public var via: [SIPVia] {
        get throws(SIPParseError) {
            var result: [SIPVia] = []
            for v in splitValues(.via) {
                guard let via = SIPVia.parse(v) else { throw SIPParseError(.invalidHeaderValue("Via")) }
                result.append(via)
            }
            return result
        }
    }

    /// The top Via.
    public var topVia: SIPVia? {
        get throws(SIPParseError) {
            guard let first = self[.via] else { return nil }
            guard let v = HeaderSplitter.firstPiece(first, on: ASCII.comma), let via = SIPVia.parse(v) else {
                throw SIPParseError(.invalidHeaderValue("Via"))
            }
            return via
        }
    }

    /// The From header (RFC 3261 20.20), with its `tag` among the parameters; nil when absent,
    /// throws ``SIPParseError`` naming the header when malformed.
    public var from: NameAddress? { get throws(SIPParseError) { try nameAddress(.from) } }
    /// The To header (RFC 3261 20.39): a REGISTER's address of record; nil when absent,
    /// throws ``SIPParseError`` naming the header when malformed.
    public var to: NameAddress? { get throws(SIPParseError) { try nameAddress(.to) } }
    /// The `tag` parameter of a From or To value, read without parsing its URI (what a proxy
    /// inspects, RFC 3261 16.3 step 1); nil when the header or the tag is absent; throws
    /// ``SIPParseError`` naming the header when its parameters are malformed.
    public func tag(_ name: SIPHeaderName) throws(SIPParseError) -> String? {
        guard let v = self[name] else { return nil }
        guard let p = NameAddress.parameters(of: v) else { throw SIPParseError(.invalidHeaderValue(name.name)) }
        return p.value("tag")
    }
    /// The Call-ID header as written (RFC 3261 20.8); nil when absent.
    public var callID: Substring? { self[.callID] }

    /// The CSeq header (RFC 3261 20.16); nil when absent; throws ``SIPParseError`` (invalid CSeq) when malformed.
    public var cseq: SIPCSeq? {
        get throws(SIPParseError) {
            guard let v = self[.cseq] else { return nil }
            guard let c = SIPCSeq.parse(v) else { throw SIPParseError(.invalidCSeq) }
            return c
        }
    }

    /// The Contact header: nil when absent, `.wildcard` for `*`, else the list.
    /// `*` together with other contacts is reported as malformed.
    public var contact: SIPContactHeader? {
        get throws(SIPParseError) {
            let values = splitValues(.contact)
            if values.isEmpty { return nil }
            if values.contains(where: { $0 == "*" }) {
                guard values.count == 1 else { throw SIPParseError(.invalidHeaderValue("Contact")) }
                return .wildcard
            }
            var list: [SIPContact] = []
            list.reserveCapacity(values.count)
            for v in values {
                guard let (a, text) = NameAddress.parseKeepingURIText(v) else {
                    throw SIPParseError(.invalidHeaderValue("Contact"))
                }
                list.append(SIPContact(address: a, uriText: text))
            }
            return .contacts(list)
        }
    }

    /// The Expires header in seconds (RFC 3261 20.19); nil when absent, throws ``SIPParseError`` naming the header when malformed.
    public var expires: Int? { get throws(SIPParseError) { try integer(.expires) } }
    /// The Min-Expires header in seconds (RFC 3261 20.23); nil when absent, throws ``SIPParseError`` naming the header when malformed.
    public var minExpires: Int? { get throws(SIPParseError) { try integer(.minExpires) } }
    /// The Max-Forwards header (RFC 3261 20.22); nil when absent, throws ``SIPParseError`` naming the header when malformed.
    public var maxForwards: Int? { get throws(SIPParseError) { try integer(.maxForwards) } }
    /// The Content-Length header in bytes (RFC 3261 20.14); nil when absent, throws ``SIPParseError`` naming the header when malformed.
    public var contentLength: Int? { get throws(SIPParseError) { try integer(.contentLength) } }
    /// The Content-Type header as written; nil when absent.
    public var contentType: Substring? { self[.contentType] }
    /// The option tags of every Require header (RFC 3261 20.32), in order; empty when absent.
    public var require: [String] { tokenList(.require) }
    /// The option tags of every Proxy-Require header (RFC 3261 20.29); empty when absent.
    public var proxyRequire: [String] { tokenList(.proxyRequire) }
    /// The option tags of every Supported header (RFC 3261 20.37); empty when absent.
    public var supported: [String] { tokenList(.supported) }
    /// The option tags of every Unsupported header (RFC 3261 20.40); empty when absent.
    public var unsupported: [String] { tokenList(.unsupported) }
    /// Every Route value, top first (RFC 3261 20.34); empty when absent, throws ``SIPParseError`` naming the header when malformed.
    public var route: [NameAddress] { get throws(SIPParseError) { try nameAddressList(.route) } }
    /// Every Record-Route value, top first (RFC 3261 20.30); empty when absent, throws ``SIPParseError`` naming the header when malformed.
    public var recordRoute: [NameAddress] { get throws(SIPParseError) { try nameAddressList(.recordRoute) } }
    /// Every Path value, top first (RFC 3327); empty when absent, throws ``SIPParseError`` naming the header when malformed.
    public var path: [NameAddress] { get throws(SIPParseError) { try nameAddressList(.path) } }
    /// The User-Agent header as written; nil when absent.
    public var userAgent: Substring? { self[.userAgent] }
    /// The Server header as written; nil when absent.
    public var server: Substring? { self[.server] }
    /// The Date header as written (see ``SIPDate``); nil when absent.
    public var date: Substring? { self[.date] }

    /// The Retry-After header (RFC 3261 20.33); nil when absent, throws ``SIPParseError`` naming the header when malformed.
    public var retryAfter: SIPRetryAfter? {
        get throws(SIPParseError) {
            guard let v = self[.retryAfter] else { return nil }
            guard let r = SIPRetryAfter.parse(v) else { throw SIPParseError(.invalidHeaderValue("Retry-After")) }
            return r
        }
    }

    private func authFields(_ name: SIPHeaderName) throws(SIPParseError) -> [SIPAuthField] {
        var result: [SIPAuthField] = []
        for v in values(name) {
            guard let a = SIPAuthField.parse(v) else { throw SIPParseError(.invalidHeaderValue(name.name)) }
            result.append(a)
        }
        return result
    }

    /// Every Authorization header: a UA's credentials for a registrar (RFC 3261 22.2); throws ``SIPParseError`` naming the header when malformed.
    public var authorization: [SIPAuthField] { get throws(SIPParseError) { try authFields(.authorization) } }
    /// Every Proxy-Authorization header: credentials for a proxy (RFC 3261 22.3); throws ``SIPParseError`` naming the header when malformed.
    public var proxyAuthorization: [SIPAuthField] { get throws(SIPParseError) { try authFields(.proxyAuthorization) } }
    /// Every WWW-Authenticate header: a registrar's challenges in a 401; throws ``SIPParseError`` naming the header when malformed.
    public var wwwAuthenticate: [SIPAuthField] { get throws(SIPParseError) { try authFields(.wwwAuthenticate) } }
    /// Every Proxy-Authenticate header: a proxy's challenges in a 407; throws ``SIPParseError`` naming the header when malformed.
    public var proxyAuthenticate: [SIPAuthField] { get throws(SIPParseError) { try authFields(.proxyAuthenticate) } }

    /// Every Warning value (RFC 3261 20.43), in order; throws ``SIPParseError`` naming the header when malformed.
    public var warning: [SIPWarning] {
        get throws(SIPParseError) {
            var result: [SIPWarning] = []
            for v in splitValues(.warning) {
                guard let w = SIPWarning.parse(v) else { throw SIPParseError(.invalidHeaderValue("Warning")) }
                result.append(w)
            }
            return result
        }
    }
}

/// RFC 1123 dates as used by the SIP Date header (RFC 3261 20.17), always GMT.
public enum SIPDate {
    private static let days = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]
    private static let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]

    /// The last formatted second, reused while the clock stays within it.
    private static let cache = Mutex<(Int64, String)>((Int64.min, ""))

    /// Formats seconds since 1970 as `Sat, 13 Nov 2010 23:29:00 GMT`.
    public static func format(secondsSince1970 t: Int64) -> String {
        if let hit = cache.withLock({ $0.0 == t ? $0.1 : nil }) { return hit }
        let text = formatUncached(t)
        cache.withLock { $0 = (t, text) }
        return text
    }

    static func formatUncached(_ t: Int64) -> String {
        let dayCount = t >= 0 ? t / 86_400 : (t - 86_399) / 86_400
        let secs = Int(t - dayCount * 86_400)
        // Civil-from-days (proleptic Gregorian).
        let z = dayCount + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        var y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        if m <= 2 { y += 1 }
        let weekday = Int(((dayCount % 7) + 7) % 7)
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : String(n) }
        return "\(days[weekday]), \(two(Int(d))) \(months[Int(m) - 1]) \(y) \(two(secs / 3600)):\(two(secs / 60 % 60)):\(two(secs % 60)) GMT"
    }
}
