import SIPMessage

/// A final response in the response context (RFC 3261 16.2) and whether the proxy made it
/// up for a branch (a 408 for a timeout, 430/480 for a lost flow, 503 for a transport error).
public struct ContextResponse: Sendable, Hashable {
    /// The response, our Via already removed.
    public var response: SIPResponse
    /// Whether the proxy generated it instead of receiving it.
    public var generated: Bool

    /// Builds an entry.
    public init(_ response: SIPResponse, generated: Bool = false) {
        self.response = response
        self.generated = generated
    }
}

/// Best-response selection (RFC 3261 16.7 steps 6 and 7).
public enum BestResponse {
    /// Codes that tell the caller how to resubmit: preferred within the 4xx class (16.7 step 6).
    static let resubmissionHints: [Int] = [401, 407, 415, 420, 484]

    /// Index of the best response: any 6xx; otherwise the lowest class; within 4xx the
    /// resubmission hints first, then (after the caller's CANCEL) a 487, then a received
    /// response before a generated one, the earliest first. Nil for an empty context.
    public static func choose(_ context: [ContextResponse], cancelledByCaller: Bool = false) -> Int? {
        guard !context.isEmpty else { return nil }
        if let six = context.firstIndex(where: { $0.response.statusCode >= 600 }) { return six }
        let lowestClass = context.map { $0.response.statusCode / 100 }.min() ?? 4
        let candidates = context.indices.filter { context[$0].response.statusCode / 100 == lowestClass }
        func rank(_ i: Int) -> (Int, Int, Int) {
            let code = context[i].response.statusCode
            let hint = resubmissionHints.contains(code) ? 0 : (cancelledByCaller && code == 487 ? 1 : 2)
            return (hint, context[i].generated ? 1 : 0, i)
        }
        return candidates.min { rank($0) < rank($1) }
    }

    /// The response to send upstream for the chosen entry: a 503 becomes a 500 (16.7 step 6,
    /// a 503 would tell the caller that we are overloaded); a 401 or 407 gets every
    /// WWW-Authenticate and Proxy-Authenticate value of the other 401 and 407 responses,
    /// unmodified (16.7 step 7).
    public static func forwardable(_ context: [ContextResponse], chosen: Int) -> SIPResponse {
        var out = context[chosen].response
        if out.statusCode == 503 {
            out.statusCode = 500
            out.reasonPhrase = SIPResponse.defaultReasonPhrase(500)
        }
        if out.statusCode == 401 || out.statusCode == 407 {
            for (i, entry) in context.enumerated() where i != chosen {
                let code = entry.response.statusCode
                guard code == 401 || code == 407 else { continue }
                for f in entry.response.headers where f.name == .wwwAuthenticate || f.name == .proxyAuthenticate {
                    out.headers.add(f.name, f.value)
                }
            }
        }
        return out
    }
}
