/// Durable storage for bindings. The registrar keeps its own in-memory index for
/// lookups; a store makes changes durable (the registrar answers 200 only after
/// `apply` returns) and gives everything back at start.
///
/// Implementations: ``EphemeralBindingStore`` (Net::SIP's behaviour: nothing
/// survives a restart), ``InMemoryBindingStore`` (for tests), SQLite and
/// PostgreSQL in `SIPLocationStores`.
public protocol BindingStore: Sendable {
    /// Every stored binding, expired or not (the registrar drops expired ones).
    func loadAll() async throws -> [Binding]
    /// Makes a batch of changes durable, all or nothing, in order.
    func apply(_ changes: [BindingChange]) async throws
}

/// Net::SIP's behaviour: nothing is stored beyond the registrar's own index, so
/// nothing survives a restart. The default store, and `--store memory`.
public struct EphemeralBindingStore: BindingStore {
    /// The store; it has no state.
    public init() {}
    /// Always empty: nothing was kept.
    public func loadAll() async throws -> [Binding] { [] }
    /// Accepts the changes and keeps nothing.
    public func apply(_ changes: [BindingChange]) async throws {}
}

/// A store that keeps a second copy of the bindings in memory, which outlives a
/// registrar: useful to test restarts without a database.
public final class InMemoryBindingStore: BindingStore {
    private let state = LockedState<[String: [String: Binding]]>([:])

    /// An empty store.
    public init() {}

    /// Every binding applied so far and not removed.
    public func loadAll() async throws -> [Binding] {
        state.withLock { all in all.values.flatMap { $0.values } }
    }

    /// Applies the changes in order, at once (an `expired` change spares a binding refreshed since).
    public func apply(_ changes: [BindingChange]) async throws {
        state.withLock { all in
            for change in changes {
                switch change {
                case .upsert(let b):
                    all[b.aor, default: [:]][b.uri] = b
                case .expired(let aor, let uri, let at):
                    if let b = all[aor]?[uri], b.expiresAt <= at {
                        all[aor]?[uri] = nil
                        if all[aor]?.isEmpty == true { all[aor] = nil }
                    }
                case .remove(let aor, let uri):
                    all[aor]?[uri] = nil
                    if all[aor]?.isEmpty == true { all[aor] = nil }
                }
            }
        }
    }

    /// The number of stored bindings (for tests).
    public var count: Int { state.withLock { $0.values.reduce(0) { $0 + $1.count } } }
}
