public import SIPMessage

/// SIP messages that tests write as text.
public enum SIPText {
    /// `s` with every line end made CRLF, as SIP wants: tests write messages as Swift
    /// multi-line strings, whose line ends are LF.
    public static func crlf(_ s: String) -> String {
        s.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\r\n")
    }

    /// Parses a request written with LF (or CRLF) line ends.
    /// - Throws: the parser's error, or `SIPParseError(.badStartLine)` when `text` is a response.
    public static func request(_ text: String) throws -> SIPRequest {
        guard case .request(let r) = try SIPMessageParser().parse(crlf(text)) else { throw SIPParseError(.badStartLine) }
        return r
    }

    /// Parses a response written with LF (or CRLF) line ends.
    /// - Throws: the parser's error, or `SIPParseError(.badStartLine)` when `text` is a request.
    public static func response(_ text: String) throws -> SIPResponse {
        guard case .response(let r) = try SIPMessageParser().parse(crlf(text)) else { throw SIPParseError(.badStartLine) }
        return r
    }
}
