public import SIPMessage

extension Registrar {
    // MARK: Lookup (RFC 5630 scheme filtering)

    /// Net::SIP's `query`: the contact URIs of an address, best first.
    ///
    /// `sips:alice@example.com` returns only `sips:` contacts; `sip:alice@example.com`
    /// returns `sip:` and `sips:` contacts; non-SIP contacts (`tel:`, `mailto:`) are never
    /// returned; expired bindings are never returned, purged or not. Order: q (absent = 1)
    /// highest first, then the most recently refreshed.
    public func query(_ address: String) -> [String] {
        lookup(address).map(\.uri)
    }

    /// Like ``query(_:)`` but returns the bindings with everything stored about them.
    public func lookup(_ address: String) -> [Binding] {
        if let (aor, sipsOnly) = quickAOR(address) { return lookup(aor: aor, sipsOnly: sipsOnly) }
        guard let uri = SIPURI(address) else { return [] }
        return lookup(uri)
    }

    /// Like ``query(_:)`` for a parsed URI.
    public func lookup(_ uri: SIPURI) -> [Binding] {
        guard let aor = normalizedAOR(uri) else { return [] }
        return lookup(aor: aor, sipsOnly: uri.isSIPS)
    }

    /// The AOR key of a plain `sip:user@host` / `sips:user@host` address without a full
    /// URI parse; nil for anything less simple (escapes, ports, parameters, IPv6,
    /// upper case in the host), which then takes the full parse.
    func quickAOR(_ address: String) -> (String, Bool)? {
        let u = address.utf8
        var sips = false
        var start = u.startIndex
        if address.hasPrefix("sip:") {
            start = u.index(start, offsetBy: 4)
        } else if address.hasPrefix("sips:") {
            start = u.index(start, offsetBy: 5)
            sips = true
        } else {
            return nil
        }
        var sawAt = false
        var i = start
        while i < u.endIndex {
            let b = u[i]
            if b == 64 {  // '@'
                if sawAt { return nil }
                sawAt = true
            } else if sawAt {
                // host: lower-case names and IPv4 only
                guard (b >= 97 && b <= 122) || (b >= 48 && b <= 57) || b == 45 || b == 46 else { return nil }
            } else {
                // user: unreserved characters only
                guard (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || b == 45 || b == 46
                    || b == 95 || b == 43 || b == 126 else { return nil }
            }
            i = u.index(after: i)
        }
        guard sawAt, start < u.endIndex, u[start] != 64, u.last != 64 else { return nil }
        return (String(address[start...]), sips)
    }

    func lookup(aor: String, sipsOnly: Bool) -> [Binding] {
        let now = clock.nowMilliseconds()
        var result = state.withLock { s -> [Binding] in
            guard let list = s.records[aor] else { return [] }
            return list.filter { b in
                guard b.isActive(at: now) else { return false }
                switch b.scheme {
                case .sips: return true
                case .sip: return !sipsOnly
                case .other: return false
                }
            }
        }
        if result.count > 1 {
            result.sort { a, b in
                let qa = a.q ?? 1000, qb = b.q ?? 1000
                if qa != qb { return qa > qb }
                return a.updatedAt > b.updatedAt
            }
        }
        return result
    }

    /// Whether `host` is a domain this registrar serves (itself or a subdomain of a configured one).
    public func servesDomain(_ host: String) -> Bool { domains.serves(host) }

    /// Every active binding of an AOR, any scheme (what the 200 OK lists).
    public func bindings(ofAOR aor: String) -> [Binding] {
        let now = clock.nowMilliseconds()
        return state.withLock { $0.records[aor]?.filter { $0.isActive(at: now) } ?? [] }
    }
}
