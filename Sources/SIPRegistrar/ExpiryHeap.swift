/// A binary min-heap of expiry times. Refreshing a binding pushes a new entry and
/// leaves the old one in place; an entry that pops finds no binding of its address of
/// record expired by then and is skipped (lazy deletion), so expiring k of n bindings
/// costs O(k log n) and a REGISTER never scans the store.
///
/// An entry names the address of record only (24 bytes): the expiry removes whichever of
/// that AOR's few bindings are due, which also covers the binding the entry was pushed for.
struct ExpiryHeap: Sendable {
    struct Entry: Sendable {
        var expiresAt: Int64
        var aor: String
    }

    private(set) var entries: [Entry] = []

    var count: Int { entries.count }
    var earliest: Int64? { entries.first?.expiresAt }

    mutating func push(_ e: Entry) {
        entries.append(e)
        var i = entries.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            guard entries[i].expiresAt < entries[parent].expiresAt else { break }
            entries.swapAt(i, parent)
            i = parent
        }
    }

    /// Removes and returns the entries due at `now` (expiresAt <= now), earliest first.
    mutating func popDue(now: Int64) -> [Entry] {
        var due: [Entry] = []
        while let first = entries.first, first.expiresAt <= now {
            due.append(first)
            removeFirst()
        }
        return due
    }

    private mutating func removeFirst() {
        let last = entries.removeLast()
        guard !entries.isEmpty else { return }
        entries[0] = last
        var i = 0
        let n = entries.count
        while true {
            let l = 2 * i + 1, r = l + 1
            var m = i
            if l < n, entries[l].expiresAt < entries[m].expiresAt { m = l }
            if r < n, entries[r].expiresAt < entries[m].expiresAt { m = r }
            if m == i { break }
            entries.swapAt(i, m)
            i = m
        }
    }

    /// Rebuilds the heap from live bindings, dropping stale entries (used when stale
    /// entries outnumber live bindings, so memory stays proportional to the bindings).
    mutating func rebuild(_ live: [Entry]) {
        entries = []
        entries.reserveCapacity(live.count)
        for e in live { push(e) }
    }
}
