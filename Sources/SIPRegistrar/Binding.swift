public import SIPMessage

/// The scheme class of a contact, which decides what a lookup may return (RFC 5630).
public enum ContactScheme: UInt8, Sendable, Hashable {
    /// A `sip:` contact: returned by a lookup of a `sip:` address, never of a `sips:` one.
    case sip
    /// A `sips:` contact: returned by lookups of both `sip:` and `sips:` addresses.
    case sips
    /// `tel:`, `mailto:` and other non-SIP URIs: stored and shown in the 200, never returned by `query`.
    case other

    init(_ uri: SIPURI) {
        switch uri.scheme {
        case "sip": self = .sip
        case "sips": self = .sips
        default: self = .other
        }
    }
}

/// One contact bound to an address of record, with everything later stages need
/// (RFC 3261 10.3, RFC 5626 instance/reg-id, RFC 3327 Path).
public struct Binding: Sendable, Hashable {
    /// The normalized address of record (`user@host`), scheme-independent.
    public var aor: String
    /// The contact URI as registered.
    public var uri: String
    /// The contact URI's scheme class, which decides the lookups that return it (RFC 5630).
    public var scheme: ContactScheme
    /// q in thousandths; nil when the contact gave none.
    public var q: Int?
    /// When the binding expires, in milliseconds since 1970.
    public var expiresAt: Int64
    /// When the binding was last created or refreshed, in milliseconds since 1970.
    public var updatedAt: Int64
    /// The Call-ID of the REGISTER that last wrote the binding (RFC 3261 10.3 step 7).
    public var callID: String
    /// The CSeq number of that REGISTER: a later one with the same Call-ID must be higher.
    public var cseq: UInt32
    /// RFC 5626 `+sip.instance`, unquoted.
    public var instance: String?
    /// RFC 5626 `reg-id`.
    public var regID: Int?
    /// Other header parameters of the contact (not `expires`, `q`, `+sip.instance`, `reg-id`), as `;a=b` text.
    public var otherParameters: String
    /// RFC 3327 Path values, stored only when the UA supports `path`.
    public var path: [String]
    /// The User-Agent header of the REGISTER, if it had one.
    public var userAgent: String?
    /// The transport the REGISTER arrived on.
    public var transport: SIPTransportProtocol
    /// The address the REGISTER came from (IPv6 without brackets) and its port.
    public var sourceHost: String
    /// The port the REGISTER came from.
    public var sourcePort: Int
    /// The connection it arrived on (TCP/TLS), which a later request to this contact should reuse.
    public var flowID: UInt64?
    /// The TLS client identity (a certificate URI or an authenticated user) that made it.
    public var tlsIdentity: String?
    /// With a store shared by several registrar nodes: the node that wrote the binding and
    /// holds its connection (`flowID` is that node's). Nil for a binding made here.
    public var node: String?
    /// For a binding another node holds (`node`): the id of its connection on that node, which
    /// a request forwarded there names (issue "Several nodes, one truth"). Never one of ours.
    public var remoteFlowID: UInt64?

    /// A binding with every field given; the optional ones default to absent.
    ///
    /// The registrar builds bindings itself from a REGISTER; stores use this to rebuild them
    /// from rows, and tests to make them.
    public init(aor: String, uri: String, scheme: ContactScheme, q: Int? = nil, expiresAt: Int64, updatedAt: Int64,
                callID: String, cseq: UInt32, instance: String? = nil, regID: Int? = nil, otherParameters: String = "",
                path: [String] = [], userAgent: String? = nil, transport: SIPTransportProtocol, sourceHost: String,
                sourcePort: Int, flowID: UInt64? = nil, tlsIdentity: String? = nil, node: String? = nil,
                remoteFlowID: UInt64? = nil) {
        self.aor = aor
        self.uri = uri
        self.scheme = scheme
        self.q = q
        self.expiresAt = expiresAt
        self.updatedAt = updatedAt
        self.callID = callID
        self.cseq = cseq
        self.instance = instance
        self.regID = regID
        self.otherParameters = otherParameters
        self.path = path
        self.userAgent = userAgent
        self.transport = transport
        self.sourceHost = sourceHost
        self.sourcePort = sourcePort
        self.flowID = flowID
        self.tlsIdentity = tlsIdentity
        self.node = node
        self.remoteFlowID = remoteFlowID
    }

    /// `host:port` of the source, IPv6 in brackets.
    public var source: String { SIPSource.hostPort(sourceHost, sourcePort) }

    /// Header parameters to echo with the contact (`+sip.instance`, `reg-id` and the rest).
    public var contactParameters: String {
        var out = ""
        if let instance { out += ";+sip.instance=" + quote(instance) }
        if let regID { out += ";reg-id=" + String(regID) }
        return out + otherParameters
    }

    /// Seconds left at `now` (ms), rounded up; 0 when expired.
    public func remainingSeconds(at now: Int64) -> Int {
        let left = expiresAt - now
        return left <= 0 ? 0 : Int((left + 999) / 1000)
    }

    /// Whether it is still valid at `now` (ms).
    public func isActive(at now: Int64) -> Bool { expiresAt > now }

    /// The Contact header value for a 200 OK: `<uri>;expires=N;q=..;params`.
    public func contactHeaderValue(at now: Int64) -> String {
        var out = ""
        out.reserveCapacity(uri.utf8.count + 24 + otherParameters.utf8.count + (instance?.utf8.count ?? 0) + 32)
        out += "<"
        out += uri
        out += ">;expires="
        out += String(remainingSeconds(at: now))
        if let q { out += ";q=" + SIPContact.formatQ(q) }
        if let instance {
            out += ";+sip.instance="
            out += quote(instance)
        }
        if let regID {
            out += ";reg-id="
            out += String(regID)
        }
        out += otherParameters
        return out
    }
}

/// How a contact in a REGISTER is matched against stored bindings.
struct ContactKey {
    var uri: SIPURI?
    var uriText: String
    var instance: String?
    var regID: Int?
}

/// A change the store must make durable.
public enum BindingChange: Sendable, Hashable {
    /// Create or replace the binding of `aor` identified by `uri` (and instance).
    case upsert(Binding)
    /// Remove one binding.
    case remove(aor: String, uri: String)
    /// Remove one binding because it expired, unless it was refreshed meanwhile (by
    /// another node sharing the store): only if it still expires at or before `at`.
    case expired(aor: String, uri: String, at: Int64)

    /// The address of record changed.
    public var aor: String {
        switch self {
        case .upsert(let b): return b.aor
        case .remove(let aor, _), .expired(let aor, _, _): return aor
        }
    }
}

/// What happened to a binding, for logs, metrics and a reg-event package.
public enum BindingEvent: Sendable, Hashable {
    /// A REGISTER added a contact the address of record did not have.
    case created(Binding)
    /// A REGISTER renewed a contact (new expiry, CSeq or parameters).
    case refreshed(Binding)
    /// A contact was removed: by a REGISTER (`expires=0`, `*`, or to make room at the
    /// per-AOR limit) or by an administrative removal of the address of record.
    case removed(Binding)
    /// A contact's expiry passed and it was purged.
    case expired(Binding)

    /// `created`, `refreshed`, `removed` or `expired`.
    public var kind: String {
        switch self {
        case .created: return "created"
        case .refreshed: return "refreshed"
        case .removed: return "removed"
        case .expired: return "expired"
        }
    }

    /// The binding the event is about (as it was just before removal or expiry).
    public var binding: Binding {
        switch self {
        case .created(let b), .refreshed(let b), .removed(let b), .expired(let b): return b
        }
    }
}

/// Normalizes an address of record: `user@host` with the host lowercased and the user
/// kept as is (users are case-sensitive); the scheme, port and parameters are dropped,
/// so `sip:` and `sips:` name the same AOR (RFC 5630).
public func normalizedAOR(_ uri: SIPURI) -> String? {
    guard uri.isSIP, !uri.host.isEmpty else { return nil }
    let host = uri.hostName
    if let user = uri.user { return user + "@" + host }
    return host
}
