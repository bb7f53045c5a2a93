import SIPMessage

extension Registrar {
    // MARK: Expiry (RFC 3261 10.3 step 7; O(k log n) per run)

    /// Net::SIP's `expire`: drops every binding expired at `now` (ms since 1970; the
    /// clock's time when nil) and returns them. Costs O(k log n) for k expired bindings.
    @discardableResult
    public func expire(now: Int64? = nil) async -> [Binding] {
        let t = now ?? clock.nowMilliseconds()
        let expired = state.withLock { s -> [Binding] in
            var gone: [Binding] = []
            for e in s.heap.popDue(now: t) {
                guard let list = s.records[e.aor], list.contains(where: { !$0.isActive(at: t) }) else { continue }
                let rest = list.filter { $0.isActive(at: t) }
                gone += list.filter { !$0.isActive(at: t) }
                s.setBindings(e.aor, from: list, to: rest)
            }
            // Keep the heap proportional to the bindings: stale entries come from refreshes.
            if s.heap.count > 2 * s.bindingCount + 1024 { s.rebuildHeap() }
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
