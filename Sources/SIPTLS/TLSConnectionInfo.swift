/// What a completed handshake established.
public struct TLSConnectionInfo: Sendable, Hashable {
    /// The negotiated protocol version.
    public var version: TLSVersion?
    /// The negotiated cipher, by OpenSSL's name (`TLS_AES_128_GCM_SHA256`).
    public var cipher: String?
    /// The peer's certificate: the client's on a server (when sent), the server's on a client.
    public var peerCertificate: PeerCertificate?
    /// Whether the handshake resumed an earlier session (an abbreviated handshake).
    public var sessionReused: Bool
}

/// Fired down the pipeline after `TLSUserEvent.handshakeCompleted`, carrying the details.
public struct TLSEstablishedEvent: Sendable {
    /// What the handshake established.
    public var info: TLSConnectionInfo
}
