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

    /// A page of all active bindings, ordered by AOR then contact, for the admin API.
    ///
    /// Nothing is sorted under the registrar's lock: the AOR keys are copied out in one short
    /// hold (a copy, no comparisons), sorted outside it, and the bindings are then read in
    /// chunks of ``pageChunk`` AORs, one short hold each, so REGISTERs go on meanwhile. A page
    /// reflects the moment each chunk was read (an AOR registered after the copy is missing,
    /// one removed meanwhile is skipped). `total` counts the active bindings seen this way.
    public func allBindings(offset: Int = 0, limit: Int = 100) -> (bindings: [Binding], total: Int) {
        allBindings(offset: offset, limit: limit, afterKeysCopied: nil)
    }

    /// AORs read per lock hold when paging.
    static var pageChunk: Int { 256 }

    /// ``allBindings(offset:limit:)`` with a hook run once the keys are copied, outside the lock (tests).
    func allBindings(offset: Int, limit: Int, afterKeysCopied: (() -> Void)?) -> (bindings: [Binding], total: Int) {
        let now = clock.nowMilliseconds()
        var keys = state.withLock { Array($0.records.keys) }
        afterKeysCopied?()
        keys.sort()
        var page: [Binding] = []
        var total = 0
        var start = 0
        while start < keys.count {
            let end = min(start + Self.pageChunk, keys.count)
            let lists = state.withLock { s in keys[start..<end].map { s.records[$0] ?? [] } }
            for list in lists {
                let active = list.filter { $0.isActive(at: now) }
                if total + active.count > offset && page.count < limit {
                    let sorted = active.count > 1 ? active.sorted { $0.uri < $1.uri } : active
                    for (i, b) in sorted.enumerated() where total + i >= offset && page.count < limit { page.append(b) }
                }
                total += active.count
            }
            start = end
        }
        return (page, total)
    }

    /// Removes every binding of an address (admin), durably. Returns the removed bindings.
    @discardableResult
    public func removeAll(address: String) async throws -> [Binding] {
        guard let uri = SIPURI(address), let aor = normalizedAOR(uri) else { return [] }
        let removed = state.withLock { s -> [Binding] in
            guard let list = s.records[aor] else { return [] }
            s.setBindings(aor, from: list, to: [])
            return list
        }
        guard !removed.isEmpty else { return [] }
        do {
            try await store.apply(removed.map { .remove(aor: $0.aor, uri: $0.uri) })
        } catch {
            state.withLock { s in
                if s.records[aor] == nil { s.setBindings(aor, from: [], to: removed) }
            }
            throw error
        }
        emit(removed.map { .removed($0) })
        return removed
    }

    // MARK: Requests other than REGISTER

    func route(_ request: SIPRequest, from source: SIPSource) -> SIPReceiveOutcome {
        guard configuration.nonRegisterMode != .ignore, configuration.nonRegisterMode != .proxy, request.method != .ack, request.method != .cancel,
              request.uri.isSIP, domains.serves(request.uri.hostName), let aor = normalizedAOR(request.uri) else {
            return .pass
        }
        let targets = lookup(request.uri)
        switch configuration.nonRegisterMode {
        case .ignore, .proxy:
            return .pass
        case .rewrite:
            guard let first = targets.first, let uri = SIPURI(first.uri) else { return .pass }
            var rewritten = request
            rewritten.uri = uri
            return .forward(rewritten, source)
        case .redirect:
            if targets.isEmpty {
                // RFC 5630 3.1.3: the user exists but cannot be reached over SIPS.
                if request.uri.isSIPS, !bindings(ofAOR: aor).isEmpty {
                    var r = SIPResponse(to: request, statusCode: 480, toTag: SIPResponse.randomTag(),
                                        server: configuration.serverHeader)
                    r.headers.add(.warning, SIPWarning(code: 380, agent: request.uri.hostName, text: "SIPS Not Allowed").description)
                    return .respond(r)
                }
                return .respond(SIPResponse(to: request, statusCode: 404, toTag: SIPResponse.randomTag(),
                                            server: configuration.serverHeader))
            }
            var r = SIPResponse(to: request, statusCode: 302, toTag: SIPResponse.randomTag(), server: configuration.serverHeader)
            for b in targets {
                var value = "<" + b.uri + ">"
                if let q = b.q { value += ";q=" + SIPContact.formatQ(q) }
                r.headers.add(.contact, value)
            }
            return .respond(r)
        }
    }

    // MARK: Expiry

    /// Net::SIP's `expire`: drops every binding expired at `now` (ms since 1970; the
    /// clock's time when nil) and returns them. Costs O(k log n) for k expired bindings.
    @discardableResult
    public func expire(now: Int64? = nil) async -> [Binding] {
        let t = now ?? clock.nowMilliseconds()
        let expired = state.withLock { s -> [Binding] in
            var gone: [Binding] = []
            for e in s.heap.popDue(now: t) {
                guard let list = s.records[e.aor],
                      let i = list.firstIndex(where: { $0.uri == e.uri && $0.expiresAt <= t }) else { continue }
                var rest = list
                gone.append(rest.remove(at: i))
                s.setBindings(e.aor, from: list, to: rest)
            }
            // Keep the heap proportional to the bindings: stale entries come from refreshes.
            if s.heap.count > 2 * s.bindingCount + 1024 {
                var live: [ExpiryHeap.Entry] = []
                live.reserveCapacity(s.bindingCount)
                for (aor, list) in s.records {
                    for b in list { live.append(.init(expiresAt: b.expiresAt, aor: aor, uri: b.uri)) }
                }
                s.heap.rebuild(live)
            }
            return gone
        }
        if !expired.isEmpty {
            // Best effort: a store that fails here drops these rows at the next start anyway.
            try? await store.apply(expired.map { .expired(aor: $0.aor, uri: $0.uri, at: $0.expiresAt) })
            emit(expired.map { .expired($0) })
        }
        return expired
    }

    /// Arms the dispatcher's timer for the earliest expiry, if it is earlier than the armed one.
    func scheduleExpiry() {
        guard let timers else { return }
        let now = clock.nowMilliseconds()
        state.withLock { s in
            guard let earliest = s.heap.earliest else { return }
            if let due = s.timerDue, due <= earliest, s.timer != nil { return }
            s.timer?.cancel()
            s.timerDue = earliest
            let delay = max(0, earliest - now)
            s.timer = timers.schedule(after: .milliseconds(delay)) { [weak self] in
                guard let self else { return }
                self.state.withLock { s in
                    s.timer = nil
                    s.timerDue = nil
                }
                Task {
                    await self.expire()
                    self.scheduleExpiry()
                }
            }
        }
    }
}
