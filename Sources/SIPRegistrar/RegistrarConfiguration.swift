/// What the registrar does with a request other than REGISTER.
public enum NonRegisterMode: String, Sendable, Hashable, CaseIterable {
    /// Net::SIP's behaviour: rewrite the Request-URI to the first contact and pass the
    /// request on along the receive chain; requests for unknown users pass unchanged.
    case rewrite
    /// Answer 302 Moved Temporarily with the contacts (RFC 3261 8.3), 404 for an unknown
    /// user, 480 with `Warning: 380` when a `sips:` target has only `sip:` contacts (RFC 5630).
    case redirect
    /// Leave every non-REGISTER request to the next receiver.
    case ignore
    /// Leave them to the proxy behind the receive chain (RFC 3261 16), which looks the
    /// targets up through the registrar and forwards over the registered flows. To the
    /// registrar itself this is ``ignore``; the server installs the proxy.
    case proxy
}

/// The registrar's settings, validated at construction. Defaults are Net::SIP's
/// (`min_expires` 30, `max_expires` 300, every domain).
public struct RegistrarConfiguration: Sendable, Hashable {
    /// A non-zero expiry below this is answered 423 Interval Too Brief.
    public var minExpires: Int
    /// Expiries above this are lowered to it.
    public var maxExpires: Int
    /// The expiry used when neither the contact nor the request gives one (then capped to `maxExpires`).
    public var defaultExpires: Int
    /// Served domains: each matches itself and its subdomains; `*` or an empty list matches all.
    public var domains: [String]
    /// Answer 404 to a REGISTER for a domain not served, instead of ignoring it (Net::SIP ignores).
    public var rejectForeignDomains: Bool
    /// At most this many contacts per address of record; nil for no limit.
    public var maxContactsPerAOR: Int?
    /// At the limit, drop the least recently refreshed contact instead of answering 403.
    public var replaceOldestWhenFull: Bool
    /// How requests other than REGISTER are handled.
    public var nonRegisterMode: NonRegisterMode
    /// Option tags accepted in `Require` (RFC 3261 10.3 step 2).
    public var supportedExtensions: [String]
    /// A Server header for responses, if any.
    public var serverHeader: String?
    /// At most this many bindings in all; nil for no limit. Past it, REGISTERs that would add
    /// a binding get 503 with Retry-After, while stored bindings keep refreshing.
    public var maxBindings: Int?
    /// At most this many addresses of record; nil for no limit (503 as for `maxBindings`).
    public var maxAORs: Int?

    /// The default for ``maxBindings`` and ``maxAORs``: at about 500 bytes a binding, 4,000,000
    /// bindings take about 2 GiB, well within a 24 GiB machine beside everything else.
    public static let defaultMaxBindings = 4_000_000
    /// No REGISTER may carry more contacts than this, whatever the per-AOR limit: refused
    /// (403) before any contact is matched.
    public static let maxContactsPerRequest = 64

    /// Settings with Net::SIP's defaults; every parameter sets the property of the same name.
    /// Call ``validate()`` (the registrar's initializer does) before use.
    public init(minExpires: Int = 30, maxExpires: Int = 300, defaultExpires: Int = 3600, domains: [String] = [],
                rejectForeignDomains: Bool = false, maxContactsPerAOR: Int? = nil, replaceOldestWhenFull: Bool = false,
                nonRegisterMode: NonRegisterMode = .rewrite, supportedExtensions: [String] = ["path"],
                serverHeader: String? = nil, maxBindings: Int? = RegistrarConfiguration.defaultMaxBindings,
                maxAORs: Int? = RegistrarConfiguration.defaultMaxBindings) {
        self.minExpires = minExpires
        self.maxExpires = maxExpires
        self.defaultExpires = defaultExpires
        self.domains = domains
        self.rejectForeignDomains = rejectForeignDomains
        self.maxContactsPerAOR = maxContactsPerAOR
        self.replaceOldestWhenFull = replaceOldestWhenFull
        self.nonRegisterMode = nonRegisterMode
        self.supportedExtensions = supportedExtensions
        self.serverHeader = serverHeader
        self.maxBindings = maxBindings
        self.maxAORs = maxAORs
    }

    /// Checks the settings; throws a description of the first bad one.
    public func validate() throws(RegistrarConfigurationError) {
        guard minExpires >= 0 else { throw .invalidProperty("minExpires", "min-expires must not be negative (got \(minExpires))") }
        guard maxExpires > 0 else { throw .invalidProperty("maxExpires", "max-expires must be positive (got \(maxExpires))") }
        guard minExpires <= maxExpires else {
            throw .invalidProperty("minExpires", "min-expires (\(minExpires)) must not be greater than max-expires (\(maxExpires))")
        }
        guard defaultExpires > 0 else { throw .invalidProperty("defaultExpires", "default-expires must be positive (got \(defaultExpires))") }
        if let m = maxContactsPerAOR, m < 1 { throw .invalidProperty("maxContactsPerAOR", "max-contacts must be at least 1 (got \(m))") }
        if let m = maxBindings, m < 1 { throw .invalidProperty("maxBindings", "max-bindings must be at least 1 (got \(m))") }
        if let m = maxAORs, m < 1 { throw .invalidProperty("maxAORs", "max-aors must be at least 1 (got \(m))") }
        for d in domains where d.isEmpty || d.contains(where: { $0 == " " || $0 == "@" || $0 == ":" }) {
            throw .invalidProperty("domains", "domain '\(d)' is not a host name")
        }
    }

    /// The default expiry after capping.
    var effectiveDefaultExpires: Int { max(min(defaultExpires, maxExpires), minExpires) }
}

/// A configuration value the registrar cannot work with.
public enum RegistrarConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The setting at fault and why, as a sentence naming it (`min-expires must not be negative`).
    case invalid(String)
    /// One property at fault (its Swift name, `minExpires`) and the sentence: a caller that read
    /// the value from somewhere (a file line, a flag) can say where.
    case invalidProperty(String, String)

    /// The sentence carried by the case.
    public var description: String {
        switch self {
        case .invalid(let s), .invalidProperty(_, let s): return s
        }
    }

    /// The property at fault, when one is (`minExpires`).
    public var property: String? {
        if case .invalidProperty(let p, _) = self { return p }
        return nil
    }
}

/// Net::SIP's domain rule: a domain matches itself and its subdomains; `*` matches all;
/// no domains at all means every domain is served.
struct DomainMatcher: Sendable, Hashable {
    let domains: [String]
    let matchesAll: Bool

    init(_ domains: [String]) {
        let lowered = domains.map { $0.lowercased() }
        self.domains = lowered
        self.matchesAll = lowered.isEmpty || lowered.contains("*")
    }

    func serves(_ host: String) -> Bool {
        if matchesAll { return true }
        let h = host.lowercased()
        for d in domains {
            if h == d { return true }
            if h.hasSuffix("." + d) { return true }
        }
        return false
    }
}
