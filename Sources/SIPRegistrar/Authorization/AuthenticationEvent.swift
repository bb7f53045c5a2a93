public import SIPMessage

/// What the authenticator saw, for logs and metrics.
public enum AuthenticationEvent: Sendable, Hashable {
    /// Why an authentication failed.
    public enum Failure: String, Sendable, Hashable {
        /// Wrong password or unknown user: deliberately one reason (nobody outside can tell them apart).
        case badCredentials = "bad_credentials"
        /// A nonce this server never issued (or for another realm).
        case badNonce = "bad_nonce"
        /// A nonce-count already used with this nonce.
        case replay
        /// Credentials that are not a usable digest response (missing fields, unknown algorithm, no qop).
        case malformed
        /// A certificate naming another address of record.
        case certificateMismatch = "certificate_mismatch"
        /// Certificate mode and no usable certificate.
        case certificateMissing = "certificate_missing"
        /// Authenticated, but for another address of record.
        case notOwner = "not_owner"
    }

    /// Which limit a source met.
    public enum Limit: String, Sendable, Hashable {
        /// Failed authentications from one source (an IPv6 source counts by its /64).
        case failuresPerSource = "failed_auth_per_source"
        /// Failed authentications for one user name.
        case failuresPerUser = "failed_auth_per_user"
        /// REGISTERs from one source per window.
        case registersPerSource = "register_rate_per_source"
    }

    /// A challenge was sent for `realm` (`stale`: the password was right, the nonce was not).
    case challenged(realm: String, stale: Bool)
    /// A request was authenticated as `identity` from `source` (`host:port`).
    case authenticated(identity: String, method: SIPAuthenticationMethod, source: String)
    /// An authentication failed; `user` is the claimed user name, if one could be read.
    case failed(Failure, user: String?, realm: String, source: String)
    /// A request refused by a limit. `first` is true for the request that started the block: log that one only.
    case limited(Limit, key: String, untilMilliseconds: Int64, first: Bool)
}
