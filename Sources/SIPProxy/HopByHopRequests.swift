import SIPMessage

/// The requests a transaction layer builds itself, hop by hop.
public enum HopByHopRequests {
    /// A CANCEL for a request sent on a client transaction (RFC 3261 9.1): the same
    /// Request-URI, Call-ID, To, From and CSeq number (method CANCEL), only the top Via of
    /// the request being cancelled (so its branch matches), Route copied, Max-Forwards 70,
    /// no body.
    public static func cancel(for request: SIPRequest) -> SIPRequest {
        var h = SIPHeaders()
        if let top = SIPHeaders.firstOfList(request.headers[.via] ?? "") { h.add(.via, top) }
        h.add(.maxForwards, "70")
        copy([.to, .from, .callID], from: request.headers, to: &h)
        h.add(.cseq, cseqNumber(request) + " CANCEL")
        for v in request.headers.values(.route) { h.add(.route, v) }
        return SIPRequest(method: .cancel, uri: request.uri, headers: h)
    }

    /// The ACK for a non-2xx final response to an INVITE (RFC 3261 17.1.1.3): the
    /// Request-URI, Call-ID, From and CSeq number of the INVITE, the To of the response
    /// (with its tag), only the INVITE's top Via, its Route values, Max-Forwards 70.
    public static func ack(for invite: SIPRequest, response: SIPResponse) -> SIPRequest {
        var h = SIPHeaders()
        if let top = SIPHeaders.firstOfList(invite.headers[.via] ?? "") { h.add(.via, top) }
        h.add(.maxForwards, "70")
        if let to = response.headers[.to] { h.add(.to, to) } else { copy([.to], from: invite.headers, to: &h) }
        copy([.from, .callID], from: invite.headers, to: &h)
        h.add(.cseq, cseqNumber(invite) + " ACK")
        for v in invite.headers.values(.route) { h.add(.route, v) }
        return SIPRequest(method: .ack, uri: invite.uri, headers: h)
    }

    private static func copy(_ names: [SIPHeaderName], from source: SIPHeaders, to h: inout SIPHeaders) {
        for name in names {
            if let v = source[name] { h.add(name, v) }
        }
    }

    private static func cseqNumber(_ request: SIPRequest) -> String {
        ((try? request.headers.cseq) ?? nil).map { String($0.sequence) } ?? "1"
    }
}
