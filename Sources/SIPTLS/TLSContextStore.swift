import Synchronization

/// The context new connections use, replaced atomically on reload: existing
/// connections keep the context they started with (each SSL holds its own reference).
public final class TLSContextStore: Sendable {
    private let current: Mutex<TLSContext>
    /// Told (on the connection's event loop) of every client certificate that did not verify
    /// under `optional` client certificates: the connection stays up without an identity.
    public let unverifiedClientCertificateObserver: (@Sendable (UnverifiedClientCertificate) -> Void)?

    /// A store whose first context is `context`.
    /// - Parameters:
    ///   - context: the context new connections use until a reload.
    ///   - onUnverifiedClientCertificate: told of client certificates that did not verify
    ///     (see ``unverifiedClientCertificateObserver``).
    public init(_ context: TLSContext, onUnverifiedClientCertificate: (@Sendable (UnverifiedClientCertificate) -> Void)? = nil) {
        current = Mutex(context)
        unverifiedClientCertificateObserver = onUnverifiedClientCertificate
    }

    /// A store whose first context is built from `configuration`.
    /// - Throws: ``TLSError/configuration(_:stack:)`` when the context cannot be built.
    public convenience init(configuration: TLSConfiguration,
                            onUnverifiedClientCertificate: (@Sendable (UnverifiedClientCertificate) -> Void)? = nil) throws(TLSError) {
        self.init(try TLSContext(configuration: configuration), onUnverifiedClientCertificate: onUnverifiedClientCertificate)
    }

    /// The context for the next connection.
    public var context: TLSContext { current.withLock { $0 } }

    /// Builds and validates a new context from `configuration` (by default the current one,
    /// which re-reads the same files) and swaps it in. On failure the old context stays and
    /// the error says why.
    @discardableResult
    public func reload(configuration: TLSConfiguration? = nil) -> Result<TLSContext, TLSError> {
        let config = configuration ?? context.configuration
        do throws(TLSError) {
            let fresh = try TLSContext(configuration: config)
            current.withLock { $0 = fresh }
            return .success(fresh)
        } catch {
            return .failure(error)
        }
    }
}

/// A client certificate that was presented but did not verify against the trust roots
/// (only reachable with `optional` client certificates: `required` refuses the handshake).
public struct UnverifiedClientCertificate: Sendable {
    /// The peer's address, `host:port`.
    public var remote: String
    /// The certificate as presented.
    public var certificate: PeerCertificate
    /// OpenSSL's verification result as text.
    public var reason: String
}
