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
///
/// Packed: 136 bytes inline, and the values a REGISTER usually carries take two heap
/// blocks besides the AOR (which the index's key shares): the contact URI, Call-ID and other
/// parameters in one string, and the record itself. A `<urn:uuid:…>` instance is kept as its
/// 128 bits, small numbers in the width they need, and the fields few bindings set in one
/// optional box. Every property reads and writes as its declared type; reading `uri`,
/// `callID` or `otherParameters` copies the text out (the registrar's own paths use
/// substring views instead).
public struct Binding: Sendable, Hashable {
    // Declared so that the small fields fill the instance's tail: Swift lays each stored
    // property out after the previous one's size, not its stride.
    /// The `+sip.instance` in its compact form, for matching without building a string.
    var instanceID: InstanceID?
    /// The contact URI's scheme class, which decides the lookups that return it (RFC 5630).
    public var scheme: ContactScheme
    /// The transport the REGISTER arrived on.
    public var transport: SIPTransportProtocol
    private var hasFlow: Bool
    /// q in thousandths, `Int16.min` for none.
    private var qStorage: Int16
    private var portStorage: UInt16
    /// The CSeq number of that REGISTER: a later one with the same Call-ID must be higher.
    public var cseq: UInt32
    /// `reg-id` + 1, 0 for none; one that does not fit is in `BindingExtras.wideRegID`.
    private var regIDStorage: UInt32
    /// UTF-8 lengths of the URI and the Call-ID in `text`.
    private var uriLength: UInt32
    private var callIDLength: UInt32
    /// The normalized address of record (`user@host`), scheme-independent.
    public var aor: String
    /// The contact URI, the Call-ID and the other parameters, one after the other: one heap
    /// block (and one string header) instead of three.
    private var text: String
    /// The address the REGISTER came from (IPv6 without brackets).
    public var sourceHost: String
    /// The User-Agent header of the REGISTER, if it had one.
    public var userAgent: String?
    /// When the binding expires, in milliseconds since 1970.
    public var expiresAt: Int64
    /// When the binding was last created or refreshed, in milliseconds since 1970.
    public var updatedAt: Int64
    private var flowStorage: UInt64
    private var extras: BindingExtras?

    /// The contact URI as registered.
    public var uri: String {
        get { String(uriText) }
        set { pack(uri: newValue, callID: callIDText, otherParameters: otherParametersText) }
    }

    /// The Call-ID of the REGISTER that last wrote the binding (RFC 3261 10.3 step 7).
    public var callID: String {
        get { String(callIDText) }
        set { pack(uri: uriText, callID: newValue, otherParameters: otherParametersText) }
    }

    /// Other header parameters of the contact (not `expires`, `q`, `+sip.instance`, `reg-id`), as `;a=b` text.
    public var otherParameters: String {
        get { String(otherParametersText) }
        set { pack(uri: uriText, callID: callIDText, otherParameters: newValue) }
    }

    /// The contact URI without a copy.
    var uriText: Substring { slice(0, Int(uriLength)) }
    /// The Call-ID without a copy.
    var callIDText: Substring { slice(Int(uriLength), Int(callIDLength)) }
    /// The other parameters without a copy.
    var otherParametersText: Substring {
        let start = Int(uriLength) + Int(callIDLength)
        return slice(start, text.utf8.count - start)
    }

    private func slice(_ offset: Int, _ count: Int) -> Substring {
        let utf8 = text.utf8
        let from = utf8.index(utf8.startIndex, offsetBy: offset)
        let to = utf8.index(from, offsetBy: count)
        return Substring(utf8[from..<to]) ?? ""  // the pieces are whole strings: always on scalar boundaries
    }

    /// Sets the URI, the Call-ID and the other parameters at once (one new block).
    mutating func pack(uri: some StringProtocol, callID: some StringProtocol, otherParameters: some StringProtocol) {
        var t = ""
        t.reserveCapacity(uri.utf8.count + callID.utf8.count + otherParameters.utf8.count)
        t += uri
        t += callID
        t += otherParameters
        text = t
        uriLength = UInt32(uri.utf8.count)
        callIDLength = UInt32(callID.utf8.count)
    }

    /// q in thousandths; nil when the contact gave none.
    public var q: Int? {
        get { qStorage == .min ? nil : Int(qStorage) }
        set { qStorage = newValue.map { Int16(clamping: Swift.max(-Int(Int16.max), $0)) } ?? .min }
    }

    /// RFC 5626 `+sip.instance`, unquoted.
    public var instance: String? {
        get { instanceID?.text }
        set { instanceID = newValue.map(InstanceID.init) }
    }

    /// RFC 5626 `reg-id`.
    public var regID: Int? {
        get { regIDStorage == 0 ? extras?.wideRegID : Int(regIDStorage - 1) }
        set {
            if let v = newValue, v >= 0, v < Int(UInt32.max) {
                regIDStorage = UInt32(v + 1)
                if extras?.wideRegID != nil { setExtras(wideRegID: .some(nil)) }
            } else {
                regIDStorage = 0
                setExtras(wideRegID: .some(newValue))
            }
        }
    }

    /// The port the REGISTER came from.
    public var sourcePort: Int {
        get { Int(portStorage) }
        set { portStorage = UInt16(clamping: newValue) }
    }

    /// The connection it arrived on (TCP/TLS), which a later request to this contact should reuse.
    public var flowID: UInt64? {
        get { hasFlow ? flowStorage : nil }
        set {
            hasFlow = newValue != nil
            flowStorage = newValue ?? 0
        }
    }

    /// RFC 3327 Path values, stored only when the UA supports `path`.
    public var path: [String] {
        get { extras?.path ?? [] }
        set { setExtras(path: newValue) }
    }

    /// The TLS client identity (a certificate URI or an authenticated user) that made it.
    public var tlsIdentity: String? {
        get { extras?.tlsIdentity }
        set { setExtras(tlsIdentity: .some(newValue)) }
    }

    /// With a store shared by several registrar nodes: the node that wrote the binding and
    /// holds its connection (`flowID` is that node's). Nil for a binding made here.
    public var node: String? {
        get { extras?.node }
        set { setExtras(node: .some(newValue)) }
    }

    /// For a binding another node holds (`node`): the id of its connection on that node, which
    /// a request forwarded there names (issue "Several nodes, one truth"). Never one of ours.
    public var remoteFlowID: UInt64? {
        get { extras?.remoteFlowID }
        set { setExtras(remoteFlowID: .some(newValue)) }
    }

    /// Replaces the box of rarely set fields, changing those given (a `.some(nil)` clears one).
    private mutating func setExtras(path: [String]? = nil, tlsIdentity: String?? = nil, node: String?? = nil,
                                    remoteFlowID: UInt64?? = nil, wideRegID: Int?? = nil) {
        let old = extras
        extras = BindingExtras.make(path: path ?? old?.path ?? [], tlsIdentity: tlsIdentity ?? old?.tlsIdentity,
                                    node: node ?? old?.node, remoteFlowID: remoteFlowID ?? old?.remoteFlowID,
                                    wideRegID: wideRegID ?? old?.wideRegID)
    }

    /// A binding with every field given; the optional ones default to absent.
    ///
    /// The registrar builds bindings itself from a REGISTER; stores use this to rebuild them
    /// from rows, and tests to make them.
    public init(aor: String, uri: String, scheme: ContactScheme, q: Int? = nil, expiresAt: Int64, updatedAt: Int64,
                callID: String, cseq: UInt32, instance: String? = nil, regID: Int? = nil, otherParameters: String = "",
                path: [String] = [], userAgent: String? = nil, transport: SIPTransportProtocol, sourceHost: String,
                sourcePort: Int, flowID: UInt64? = nil, tlsIdentity: String? = nil, node: String? = nil,
                remoteFlowID: UInt64? = nil) {
        self.instanceID = instance.map(InstanceID.init)
        self.scheme = scheme
        self.transport = transport
        self.hasFlow = false
        self.qStorage = .min
        self.portStorage = UInt16(clamping: sourcePort)
        self.cseq = cseq
        self.regIDStorage = 0
        self.uriLength = 0
        self.callIDLength = 0
        self.aor = aor
        self.text = ""
        self.sourceHost = sourceHost
        self.userAgent = userAgent
        self.expiresAt = expiresAt
        self.updatedAt = updatedAt
        self.flowStorage = 0
        self.extras = BindingExtras.make(path: path, tlsIdentity: tlsIdentity, node: node, remoteFlowID: remoteFlowID,
                                         wideRegID: nil)
        self.q = q
        self.regID = regID
        self.flowID = flowID
        pack(uri: uri, callID: callID, otherParameters: otherParameters)
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
        let uri = uriText, otherParameters = otherParametersText
        out.reserveCapacity(uri.utf8.count + 24 + otherParameters.utf8.count + (instanceID == nil ? 0 : 64) + 32)
        out += "<"
        out += uri
        out += ">;expires="
        out += String(remainingSeconds(at: now))
        if let q { out += ";q=" + SIPContact.formatQ(q) }
        switch instanceID {
        case nil: break
        case .text(let instance)?:
            out += ";+sip.instance="
            out += quote(instance)
        case .uuid?:
            // The packed form has no quote or backslash to escape.
            out += ";+sip.instance=\""
            out += instanceID?.text ?? ""
            out += "\""
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
    var instance: InstanceID?
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
