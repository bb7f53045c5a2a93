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
    /// The loop-detection hash, 16 hex digits.
    public var loopHash: String
    /// The transaction hash, 16 hex digits.
    public var transactionHash: String

    /// What our branches start with: the RFC 3261 8.1.1.7 cookie and a marker.
    public static let prefix = SIPVia.magicCookie + "sp"

    /// Builds the key from its parts.
    public init(loopHash: String, transactionHash: String) {
        self.loopHash = loopHash
        self.transactionHash = transactionHash
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
        self.init(loopHash: loop.hex, transactionHash: tx.hex)
    }

    /// The branch parameter for branch number `index`.
    public func branch(index: Int) -> String {
        Self.prefix + loopHash + transactionHash + "." + String(index)
    }

    /// Splits one of our branch values; nil for a branch we did not make.
    public static func parse(_ branch: String) -> (key: ProxyBranchKey, index: Int)? {
        guard branch.hasPrefix(prefix) else { return nil }
        let rest = branch.dropFirst(prefix.count)
        let u = Array(rest.utf8)
        guard u.count > 33, u[32] == UInt8(ascii: "."),
              u[0..<32].allSatisfy({ ($0 >= 48 && $0 <= 57) || ($0 >= 97 && $0 <= 102) }),
              let index = Int(String(decoding: u[33...], as: UTF8.self)), index >= 0 else { return nil }
        let loop = String(decoding: u[0..<16], as: UTF8.self)
        let tx = String(decoding: u[16..<32], as: UTF8.self)
        return (ProxyBranchKey(loopHash: loop, transactionHash: tx), index)
    }
}
