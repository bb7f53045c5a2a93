/// Shares one copy of strings that many bindings repeat (User-Agent values: a fleet
/// runs a handful of softphone versions). Bounded: past `capacity` distinct values,
/// new ones are simply copied.
package final class StringInterner: Sendable {
    private let table = LockedState<[Substring: String]>([:])
    private let capacity: Int

    package init(capacity: Int = 4096) { self.capacity = capacity }

    package func intern(_ text: Substring) -> String {
        if let hit = table.withLock({ $0[text] }) { return hit }
        let owned = String(text)
        table.withLock { t in
            if t.count < capacity { t[Substring(owned)] = owned }
        }
        return owned
    }

    /// The shared copy of `text`, which becomes the shared copy when there is none yet
    /// (values read back from a store, where each row has its own).
    package func intern(_ text: String) -> String {
        let key = Substring(text)
        return table.withLock { t in
            if let hit = t[key] { return hit }
            if t.count < capacity { t[key] = text }
            return text
        }
    }
}
