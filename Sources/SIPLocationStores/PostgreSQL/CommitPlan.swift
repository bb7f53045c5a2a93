import SIPRegistrar

/// A batch reduced to its effect: the last change to each (aor, uri) wins, in order, so one
/// statement per kind never touches a row twice (ON CONFLICT forbids that).
package struct CommitPlan {
    package struct Key: Hashable {
        package var aor: String
        package var uri: String
    }

    enum Effect {
        case upsert(Binding)
        case remove
        case expire(at: Int64)
    }

    package var upserts: [Binding] = []
    package var removals: [Key] = []
    package var expiries: [(aor: String, uri: String, at: Int64)] = []
    package var aors: [String] = []

    package init(_ batch: [BindingChange]) {
        var effects: [Key: Effect] = [:]
        var order: [Key] = []
        for change in batch {
            let key: Key
            let next: Effect
            switch change {
            case .upsert(let b):
                key = Key(aor: b.aor, uri: b.uri)
                next = .upsert(b)
            case .remove(let aor, let uri):
                key = Key(aor: aor, uri: uri)
                next = .remove
            case .expired(let aor, let uri, let at):
                key = Key(aor: aor, uri: uri)
                switch effects[key] {
                case .upsert(let b)?: next = b.expiresAt <= at ? .remove : .upsert(b)
                case .remove?: next = .remove
                case .expire(let earlier)?: next = .expire(at: max(earlier, at))
                case nil: next = .expire(at: at)
                }
            }
            if effects[key] == nil { order.append(key) }
            effects[key] = next
        }
        var seen = Set<String>()
        for key in order {
            switch effects[key] {
            case .upsert(let b)?: upserts.append(b)
            case .remove?: removals.append(key)
            case .expire(let at)?: expiries.append((key.aor, key.uri, at))
            case nil: break
            }
            if seen.insert(key.aor).inserted { aors.append(key.aor) }
        }
    }
}

/// One REGISTER's changes on their way to the database. While queued (or while its batch
/// waits for a connection) it can be withdrawn: its REGISTER timed out and was answered 503,
