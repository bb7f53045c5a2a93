public import SIPMessage

/// Builds REGISTER requests the way clients write them. Every part has a default (alice at
/// example.com, from 192.0.2.10:5060 over UDP) that a test changes where it matters.
public struct RegisterBuilder: Sendable {
    /// The Request-URI.
    public var requestURI = "sip:example.com"
    /// The To header's value: the address of record.
    public var to = "<sip:alice@example.com>"
    /// The From header's value before its tag; nil: the same as ``to``.
    public var from: String?
    /// The From tag.
    public var fromTag = "from1"
    /// One Contact header per entry.
    public var contacts: [String] = ["<sip:alice@192.0.2.10:5060>"]
    /// The Expires header, when set.
    public var expires: Int?
    /// The Call-ID.
    public var callID = "call-1"
    /// The CSeq number.
    public var cseq: UInt32 = 1
    /// More header lines, after the others and before Content-Length.
    public var extra: [String] = []
    /// The Via transport (`UDP`, `TCP`, `TLS`, `WS`, ...).
    public var transport = "UDP"
    /// The Via sent-by.
    public var sentBy = "192.0.2.10:5060"
    /// The Via branch; nil: `z9hG4bK` + Call-ID + CSeq.
    public var branch: String?
    /// Whether the Via carries an empty `rport` (RFC 3581).
    public var rport = false
    /// The body (Content-Length follows it).
    public var body = ""

    /// A REGISTER with every default.
    public init() {}

    /// The request as text, CRLF line ends.
    public func text() -> String {
        var lines = [
            "REGISTER \(requestURI) SIP/2.0",
            "Via: SIP/2.0/\(transport) \(sentBy);branch=\(branch ?? "z9hG4bK\(callID)\(cseq)")" + (rport ? ";rport" : ""),
            "From: \(from ?? to);tag=\(fromTag)",
            "To: \(to)",
            "Call-ID: \(callID)",
            "CSeq: \(cseq) REGISTER",
        ]
        for c in contacts { lines.append("Contact: \(c)") }
        if let expires { lines.append("Expires: \(expires)") }
        lines.append("Max-Forwards: 70")
        lines += extra
        lines.append("Content-Length: \(body.utf8.count)")
        return lines.joined(separator: "\r\n") + "\r\n\r\n" + body
    }

    /// The request, parsed.
    public func request() throws -> SIPRequest { try SIPText.request(text()) }
}
