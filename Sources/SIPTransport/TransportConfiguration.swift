import SIPMessage

/// Limits and timers of the transport layer. Every cap has a default and can be changed.
public struct TransportConfiguration: Sendable, Hashable {
    /// Largest message accepted, on UDP and on streams (RFC 3261 18.1.1: receivers handle up to 65,535 bytes).
    public var maxMessageBytes: Int
    /// Header fields per message.
    public var maxHeaderCount: Int
    /// Bytes per header line.
    public var maxLineBytes: Int
    /// Open TCP/TLS connections in total.
    public var maxConnections: Int
    /// Open TCP/TLS connections from one remote IP address.
    public var maxConnectionsPerIP: Int
    /// New TLS connections (handshakes) accepted per remote IP address per second; 0 for no limit.
    public var maxTLSHandshakesPerIPPerSecond: Int
    /// Sources the per-IP limits do not apply to (loopback by default).
    public var limitExemptions: IPAddressSet
    /// A connection that has not sent one valid message within this time is closed.
    public var idleTimeoutBeforeFirstMessage: Duration
    /// A connection idle this long is closed, unless a binding still uses it.
    public var idleTimeout: Duration
    /// Outbound bytes queued on one connection before it is considered stuck and closed.
    public var maxQueuedBytesPerConnection: Int
    /// RFC 3261 T1 (round-trip estimate).
    public var t1: Duration
    /// RFC 3261 T2 (maximum retransmit interval for non-INVITE requests).
    public var t2: Duration
    /// Server transactions remembered for retransmissions at once; beyond this, new ones are not cached.
    public var maxServerTransactions: Int
    /// UDP datagrams read per system call (recvmmsg).
    public var udpVectorReadCount: Int
    /// Host names and addresses that name this server in a Route header, besides the listeners' own.
    public var localNames: [String]
    /// A Server header for responses the transport makes itself (400 to broken requests).
    public var serverHeader: String?
    /// Let other event loops process the requests one loop read when it falls behind, so that
    /// one busy peer (one UDP socket, one connection) uses every core; the requests of one
    /// Call-ID keep their order (`LoopAssignment`). Off by default here (the server turns it
    /// on): a hand-over wakes another thread, which costs CPU per request, so a message is
    /// handed over only while the reading loop's leg reports a backlog.
    public var spreadAcrossLoops = false
    /// What the WebSocket legs accept: allowed origins, the largest frame.
    public var webSocket = WebSocketPolicy()

    /// The defaults are this server's: 64 KiB messages, 256 headers, 20,000 connections (256 per
    /// source), 20 TLS handshakes per source and second.
    public init(maxMessageBytes: Int = 65_536, maxHeaderCount: Int = 256, maxLineBytes: Int = 8_192,
                maxConnections: Int = 20_000, maxConnectionsPerIP: Int = 256, maxTLSHandshakesPerIPPerSecond: Int = 20,
                limitExemptions: IPAddressSet = .loopback,
                idleTimeoutBeforeFirstMessage: Duration = .seconds(30), idleTimeout: Duration = .seconds(7_200),
                maxQueuedBytesPerConnection: Int = 1 << 20, t1: Duration = .milliseconds(500), t2: Duration = .seconds(4),
                maxServerTransactions: Int = 200_000, udpVectorReadCount: Int = 8, localNames: [String] = [],
                serverHeader: String? = nil) {
        self.maxMessageBytes = maxMessageBytes
        self.maxHeaderCount = maxHeaderCount
        self.maxLineBytes = maxLineBytes
        self.maxConnections = maxConnections
        self.maxConnectionsPerIP = maxConnectionsPerIP
        self.maxTLSHandshakesPerIPPerSecond = maxTLSHandshakesPerIPPerSecond
        self.limitExemptions = limitExemptions
        self.idleTimeoutBeforeFirstMessage = idleTimeoutBeforeFirstMessage
        self.idleTimeout = idleTimeout
        self.maxQueuedBytesPerConnection = maxQueuedBytesPerConnection
        self.t1 = t1
        self.t2 = t2
        self.maxServerTransactions = maxServerTransactions
        self.udpVectorReadCount = udpVectorReadCount
        self.localNames = localNames
        self.serverHeader = serverHeader
    }

    var parserLimits: SIPParserLimits {
        SIPParserLimits(maxMessageBytes: maxMessageBytes, maxHeaderCount: maxHeaderCount, maxLineBytes: maxLineBytes)
    }

    /// Timer J for non-INVITE server transactions: 64·T1 on UDP, 0 on reliable transports (RFC 3261 17.2.2).
    func timerJ(_ transport: SIPTransportProtocol) -> Duration {
        transport.isReliable ? .zero : t1 * 64
    }
}

/// Counters the transport keeps; the server exports them as metrics.
public enum TransportCounter: String, Sendable, CaseIterable {
    case parseErrors = "parse_errors"
    case retransmissionsAbsorbed = "retransmissions_absorbed"
    case connectionsRefusedTotalLimit = "connections_refused_total_limit"
    case connectionsRefusedPerIPLimit = "connections_refused_per_ip_limit"
    case connectionsRefusedHandshakeRate = "connections_refused_handshake_rate"
    case connectionsClosedIdle = "connections_closed_idle"
    case connectionsClosedStuck = "connections_closed_stuck"
    case framingErrors = "framing_errors"
    case transactionCacheFull = "transaction_cache_full"
    case keepAlivePings = "keepalive_pings"
    case responsesUnroutable = "responses_unroutable"
}
