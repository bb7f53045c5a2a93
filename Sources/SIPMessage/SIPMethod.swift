/// A request method. Methods are case-sensitive (RFC 3261 7.1).
public struct SIPMethod: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The method token exactly as written (`REGISTER`).
    public let rawValue: String

    /// A method from its token; any token is accepted (extension methods included).
    public init(_ rawValue: String) { self.rawValue = rawValue }
    /// A method from a literal: `let m: SIPMethod = "REGISTER"`.
    public init(stringLiteral value: String) { self.rawValue = value }

    /// The method token.
    public var description: String { rawValue }

    /// `REGISTER` (RFC 3261 10).
    public static let register: SIPMethod = "REGISTER"
    /// `INVITE` (RFC 3261 13).
    public static let invite: SIPMethod = "INVITE"
    /// `ACK` (RFC 3261 13.2.2.4, 17).
    public static let ack: SIPMethod = "ACK"
    /// `BYE` (RFC 3261 15).
    public static let bye: SIPMethod = "BYE"
    /// `CANCEL` (RFC 3261 9).
    public static let cancel: SIPMethod = "CANCEL"
    /// `OPTIONS` (RFC 3261 11).
    public static let options: SIPMethod = "OPTIONS"
    /// `SUBSCRIBE` (RFC 6665).
    public static let subscribe: SIPMethod = "SUBSCRIBE"
    /// `NOTIFY` (RFC 6665).
    public static let notify: SIPMethod = "NOTIFY"
    /// `MESSAGE` (RFC 3428).
    public static let message: SIPMethod = "MESSAGE"
    /// `INFO` (RFC 6086).
    public static let info: SIPMethod = "INFO"
    /// `REFER` (RFC 3515).
    public static let refer: SIPMethod = "REFER"
    /// `UPDATE` (RFC 3311).
    public static let update: SIPMethod = "UPDATE"
    /// `PRACK` (RFC 3262).
    public static let prack: SIPMethod = "PRACK"
    /// `PUBLISH` (RFC 3903).
    public static let publish: SIPMethod = "PUBLISH"
}
