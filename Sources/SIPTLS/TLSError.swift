internal import COpenSSL

/// One entry of OpenSSL's thread-local error queue.
public struct OpenSSLError: Sendable, Hashable, CustomStringConvertible {
    /// OpenSSL's packed error code (`ERR_get_error`).
    public var code: UInt
    /// OpenSSL's reason string, e.g. "certificate verify failed".
    public var reason: String
    /// The library that raised it ("SSL routines", "PEM routines"...).
    public var library: String

    /// The reason, followed by the library in parentheses when OpenSSL names one.
    public var description: String { library.isEmpty ? reason : "\(reason) (\(library))" }
}

/// Everything that can go wrong in SIPTLS. Errors carry OpenSSL's drained error stack.
public enum TLSError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A configuration could not be turned into a context: names the file and the reason.
    case configuration(String, stack: [OpenSSLError])
    /// The handshake failed; `verifyResult` is OpenSSL's X509 verification text when verification failed.
    case handshakeFailed(stack: [OpenSSLError], verifyResult: String?)
    /// The peer closed the transport during the handshake.
    case eofDuringHandshake
    /// The handshake did not complete in time.
    case handshakeTimeout
    /// The transport closed without a close_notify after the handshake (benign at a SIP message boundary).
    case uncleanShutdown
    /// A protocol error after the handshake (bad record MAC, unexpected message...).
    case protocolError(stack: [OpenSSLError])
    /// The peer did not answer our close_notify in time.
    case closeTimedOut
    /// More plaintext was written before the handshake than the configured cap.
    case bufferedPlaintextLimitExceeded(limit: Int)
    /// The handler is closed.
    case closed
    /// The server's certificate does not carry the expected SIP domain (RFC 5922).
    case domainIdentityMismatch(expected: String)

    /// One line for a log or an error message: what failed, then OpenSSL's reasons.
    public var description: String {
        switch self {
        case .configuration(let what, let stack):
            return stack.isEmpty ? what : "\(what): \(stack.map(\.description).joined(separator: "; "))"
        case .handshakeFailed(let stack, let verify):
            var s = "TLS handshake failed"
            if let verify { s += " (certificate: \(verify))" }
            if !stack.isEmpty { s += ": " + stack.map(\.description).joined(separator: "; ") }
            return s
        case .eofDuringHandshake: return "connection closed during the TLS handshake"
        case .handshakeTimeout: return "TLS handshake timed out"
        case .uncleanShutdown: return "connection closed without TLS close_notify"
        case .protocolError(let stack): return "TLS protocol error: " + stack.map(\.description).joined(separator: "; ")
        case .closeTimedOut: return "peer did not answer close_notify in time"
        case .bufferedPlaintextLimitExceeded(let limit): return "more than \(limit) bytes written before the TLS handshake completed"
        case .closed: return "TLS connection closed"
        case .domainIdentityMismatch(let d): return "server certificate does not identify SIP domain \(d) (RFC 5922)"
        }
    }
}

enum OpenSSLErrors {
    /// Drains the calling thread's error queue.
    static func drain() -> [OpenSSLError] {
        var stack: [OpenSSLError] = []
        while true {
            let code = ERR_get_error()
            if code == 0 { break }
            let reason = ERR_reason_error_string(code).map { String(cString: $0) } ?? "error \(code)"
            let lib = ERR_lib_error_string(code).map { String(cString: $0) } ?? ""
            stack.append(OpenSSLError(code: code, reason: reason, library: lib))
        }
        return stack
    }

    /// Clears stale errors before an SSL call (a stale entry would turn WANT_READ into a failure).
    @inline(__always)
    static func clear() { ERR_clear_error() }
}
