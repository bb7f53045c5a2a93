import SIPMessage

/// The flow a Record-Route (or Path) URI stands for (RFC 5626 5.3): the connection a
/// dialog's requests must take to reach a user agent that is only reachable through it,
/// or, for a UDP peer, the address and port its messages came from.
///
/// The token sits in the user part of our Record-Route URI. It is authenticated with a
/// MAC under the node's secret, so a request cannot name a flow we did not hand out.
public struct FlowToken: Sendable, Hashable {
    /// The connection; nil ("none") for UDP or when no connection is known.
    public var flowID: UInt64?
    /// The transport of the flow.
    public var transport: SIPTransportProtocol
    /// The peer's address (IPv6 without brackets).
    public var host: String
    /// The peer's port.
    public var port: Int

    /// Builds a token.
    public init(flowID: UInt64?, transport: SIPTransportProtocol, host: String, port: Int) {
        self.flowID = flowID
        self.transport = transport
        self.host = host
        self.port = port
    }

    /// The flow a request arrived on.
    public init(source: SIPSource) {
        self.init(flowID: source.flowID, transport: source.transport, host: source.remoteHost, port: source.remotePort)
    }

    /// Whether this token names the flow `source` arrived on: the same connection, or for
    /// UDP the same transport, address and port.
    public func names(_ source: SIPSource) -> Bool {
        if let flowID, let other = source.flowID { return flowID == other }
        return flowID == nil && source.flowID == nil && transport == source.transport
            && host.lowercased() == source.remoteHost.lowercased() && port == source.remotePort
    }
}

/// Encodes and verifies flow tokens. The MAC is injected (HMAC-SHA256 from the TLS module in
/// the server) so that this module needs no crypto library.
public struct FlowTokenCodec: Sendable {
    /// A keyed MAC, e.g. HMAC-SHA256; it must return at least ``tagLength`` bytes.
    public typealias MAC = @Sendable (_ key: [UInt8], _ message: [UInt8]) -> [UInt8]

    /// Bytes of MAC kept in a token (128 bits).
    public static let tagLength = 16
    /// Format version, the first byte of every token.
    static let version: UInt8 = 1

    private let key: [UInt8]
    private let mac: MAC

    /// A codec with the node's secret.
    public init(key: [UInt8], mac: @escaping MAC) {
        self.key = key
        self.mac = mac
    }

    /// The token as base64url text, fit for the user part of a SIP URI (all unreserved
    /// characters, RFC 3261 25.1); nil when the MAC returns fewer than ``tagLength`` bytes or
    /// the host is longer than 255 bytes.
    public func encode(_ token: FlowToken) -> String? {
        let host = Array(token.host.utf8)
        guard host.count <= 255, (0...65_535).contains(token.port) else { return nil }
        // version | flags | flow id (8, big-endian) | transport | port (2) | host length | host
        var payload: [UInt8] = [Self.version, token.flowID == nil ? 0 : 1]
        let id = token.flowID ?? 0
        for shift in stride(from: 56, through: 0, by: -8) { payload.append(UInt8(truncatingIfNeeded: id >> UInt64(shift))) }
        payload.append(Self.code(token.transport))
        payload.append(UInt8(token.port >> 8))
        payload.append(UInt8(token.port & 0xFF))
        payload.append(UInt8(host.count))
        payload.append(contentsOf: host)
        let tag = mac(key, payload)
        guard tag.count >= Self.tagLength else { return nil }
        return ProxyEncoding.base64url(payload + tag.prefix(Self.tagLength))
    }

    /// The token, when the text decodes and its MAC verifies (compared in constant time);
    /// nil for anything forged, truncated or altered.
    public func decode(_ text: some StringProtocol) -> FlowToken? {
        guard text.utf8.count <= 400, let bytes = ProxyEncoding.decodeBase64url(text) else { return nil }
        let fixed = 14  // version, flags, id, transport, port, host length
        guard bytes.count >= fixed + Self.tagLength else { return nil }
        let payload = Array(bytes.prefix(bytes.count - Self.tagLength))
        let tag = Array(bytes.suffix(Self.tagLength))
        let expected = mac(key, payload)
        guard expected.count >= Self.tagLength,
              ProxyEncoding.constantTimeEquals(Array(expected.prefix(Self.tagLength)), tag) else { return nil }
        // Authentic from here on; still parsed defensively.
        guard payload[0] == Self.version, payload[1] <= 1, let transport = Self.transport(payload[10]),
              Int(payload[13]) == payload.count - fixed else { return nil }
        var id: UInt64 = 0
        for b in payload[2..<10] { id = id << 8 | UInt64(b) }
        let port = Int(payload[11]) << 8 | Int(payload[12])
        let host = String(decoding: payload[fixed...], as: UTF8.self)
        return FlowToken(flowID: payload[1] == 1 ? id : nil, transport: transport, host: host, port: port)
    }

    private static func code(_ t: SIPTransportProtocol) -> UInt8 {
        switch t {
        case .udp: return 1
        case .tcp: return 2
        case .tls: return 3
        case .ws: return 4
        case .wss: return 5
        }
    }

    private static func transport(_ c: UInt8) -> SIPTransportProtocol? {
        switch c {
        case 1: return .udp
        case 2: return .tcp
        case 3: return .tls
        case 4: return .ws
        case 5: return .wss
        default: return nil
        }
    }
}
