import SIPMessage

/// The branch parameters of our Via (RFC 3261 16.6 step 8): the magic cookie, a
/// loop-detection hash, a transaction hash and the branch index.
///
/// - The loop hash depends on everything that affects the routing of a request — the
///   Request-URI as received, the Route set, Call-ID, the tags, the CSeq number,
///   Proxy-Require and Proxy-Authorization (the fields RFC 3261 16.11 lists) — but not on
///   the top Via, which differs each time a request passes us. A request that comes back
///   with the same loop hash in one of our Vias has looped (16.3 step 4); one whose hash
///   differs (a changed Request-URI) is spiralling and is forwarded.
/// - The transaction hash is the incoming top Via branch with its sent-by (RFC 3261 17.2.3),
///   or for an RFC 2543 peer the 16.11 fields with the top Via, so a retransmission of the
///   same request gives the same branch.
/// - The method is in neither (16.6 step 8): a CANCEL hashes like the INVITE it cancels.
public struct ProxyBranchKey: Sendable, Hashable {
    /// The loop-detection hash.
    public var loop: UInt64
    /// The transaction hash: the key of the response context.
    public var transaction: UInt64

    /// The loop-detection hash as written in the branch, 16 hex digits.
    public var loopHash: String { ProxyEncoding.hex(loop) }
    /// The transaction hash as written in the branch, 16 hex digits.
    public var transactionHash: String { ProxyEncoding.hex(transaction) }

    /// What our branches start with: the RFC 3261 8.1.1.7 cookie and a marker.
    public static let prefix = SIPVia.magicCookie + "sp"

    /// Builds the key from its parts.
    public init(loop: UInt64, transaction: UInt64) {
        self.loop = loop
        self.transaction = transaction
    }

    /// Computes the key for a request as received (before any Route is removed).
    public init(request: SIPRequest) throws(SIPParseError) {
        try self.init(request: request, topVia: request.headers.topVia)
    }

    /// The same, with the request's top Via already parsed (the transport layer parses it to
    /// stamp `received` and `rport`).
    public init(request: SIPRequest, topVia: SIPVia?) throws(SIPParseError) {
        let h = request.headers
        let toTag = try h.tag(.to) ?? ""
        let fromTag = try h.tag(.from) ?? ""
        let callID = h.callID ?? ""
        let cseq = try h.cseq.map { String($0.sequence) } ?? ""

        var loop = FNV1a64()
        loop.addField(request.uri.description)
        loop.addField(toTag)
        loop.addField(fromTag)
        loop.addField(callID)
        loop.addField(cseq)
        for v in h.values(.route) { loop.addField(v) }
        for v in h.values(.proxyRequire) { loop.addField(v) }
        for v in h.values(.proxyAuthorization) { loop.addField(v) }

        var tx = FNV1a64()
        let top = topVia
        if let top, let branch = top.branch, top.hasMagicCookie {
            tx.addField("3261")
            tx.addField(branch)
            tx.addField(top.host.lowercased())
            tx.addField(String(top.port ?? 0))
        } else {
            tx.addField("2543")
            tx.addField(top?.description ?? "")
            tx.addField(request.uri.description)
            tx.addField(toTag)
            tx.addField(fromTag)
            tx.addField(callID)
            tx.addField(cseq)
        }
        self.init(loop: loop.value, transaction: tx.value)
    }

    /// The branch parameter for branch number `index`: the prefix, both hashes in hex, `.`
    /// and the index, written into one string.
    public func branch(index: Int) -> String {
        let prefix = Self.prefix.utf8
        let number = String(index)
        let count = prefix.count + 33 + number.utf8.count
        return String(unsafeUninitializedCapacity: count) { out in
            var i = 0
            for b in prefix { out[i] = b; i += 1 }
            ProxyEncoding.writeHex(loop, into: out, at: i)
            ProxyEncoding.writeHex(transaction, into: out, at: i + 16)
            i += 32
            out[i] = UInt8(ascii: ".")
            i += 1
            for b in number.utf8 { out[i] = b; i += 1 }
            return i
        }
    }

    /// Splits one of our branch values; nil for a branch we did not make.
    public static func parse(_ branch: String) -> (key: ProxyBranchKey, index: Int)? {
        var text = branch
        return text.withUTF8 { u -> (key: ProxyBranchKey, index: Int)? in
            let p = prefix.utf8.count
            guard u.count > p + 33, u.count <= p + 33 + 18, prefix.utf8.elementsEqual(u[0..<p]),
                  u[p + 32] == UInt8(ascii: ".") else { return nil }
            func hex(_ from: Int) -> UInt64? {
                var v: UInt64 = 0
                for b in u[from..<from + 16] {
                    switch b {
                    case 48...57: v = v << 4 | UInt64(b - 48)
                    case 97...102: v = v << 4 | UInt64(b - 87)
                    default: return nil
                    }
                }
                return v
            }
            guard let loop = hex(p), let tx = hex(p + 16) else { return nil }
            var index = 0
            for b in u[(p + 33)...] {
                guard b >= 48, b <= 57 else { return nil }
                index = index * 10 + Int(b - 48)
            }
            return (ProxyBranchKey(loop: loop, transaction: tx), index)
        }
    }
}
