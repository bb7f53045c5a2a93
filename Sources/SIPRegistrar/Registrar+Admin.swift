import SIPMessage

extension Registrar {
    // MARK: Admin: paging and removal

    /// A page of all active bindings, ordered by AOR then contact, for the admin API.
    ///
    /// Nothing is sorted under the registrar's lock: the AOR keys are copied out in one short
    /// hold (a copy, no comparisons), sorted outside it, and the bindings are then read in
    /// chunks of `pageChunk` (256) AORs, one short hold each, so REGISTERs go on meanwhile. A page
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
}
