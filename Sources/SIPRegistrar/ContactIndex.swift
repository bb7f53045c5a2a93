import SIPMessage

/// The bindings of one address of record while a REGISTER is applied, indexed so that
/// finding the binding a contact names costs a dictionary lookup, not a comparison with
/// every stored binding (each of which used to parse the stored URI again).
///
/// A contact names a binding with the same `+sip.instance` and `reg-id` when the contact
/// has an instance (RFC 5626 6), else one with the same URI text or an equivalent URI
/// (RFC 3261 19.1.4). The equivalence map is built the first time a contact's text names
/// no binding (a new contact of a known address of record): a refresh names its binding by
/// text and a first registration has nothing to compare with, so most REGISTERs never
/// parse a stored URI or build an equivalence key. Once built, the map is kept up to date,
/// and each binding's URI is parsed at most once per index. Removal leaves a hole, so positions stay
/// valid; ``bindings`` drops the holes.
struct ContactIndex {
    private var slots: [Binding?] = []
    private var parsed: [SIPURI?] = []
    private var byText: [String: [Int]] = [:]
    /// Nil until a lookup needs it (see above).
    private var byEquivalence: [String: [Int]]?
    private var byInstance: [InstanceKey: [Int]] = [:]
    /// Live bindings.
    private(set) var count = 0

    private struct InstanceKey: Hashable {
        var instance: InstanceID
        var regID: Int?
    }

    init(_ bindings: [Binding]) {
        slots.reserveCapacity(bindings.count)
        for b in bindings { append(b) }
    }

    /// The live bindings, in their order.
    var bindings: [Binding] { slots.compactMap { $0 } }

    /// The position of the binding `key` names, if any. Index entries may be stale (a slot
    /// replaced or removed since): every candidate is checked against the slot's binding.
    mutating func find(_ key: ContactKey) -> Int? {
        if let instance = key.instance {
            return byInstance[InstanceKey(instance: instance, regID: key.regID)]?.first { i in
                guard let b = slots[i] else { return false }
                return b.instanceID == instance && b.regID == key.regID
            }
        }
        if let hit = byText[key.uriText]?.first(where: { slots[$0].map { $0.uriText == key.uriText } ?? false }) { return hit }
        guard count > 0, let theirs = key.uri else { return nil }
        let candidates = equivalenceMap()[theirs.equivalenceKey] ?? []
        return candidates.first { i in
            guard slots[i] != nil, let mine = parsed[i] else { return false }
            WorkCounter.count(1)
            return mine.isEquivalent(to: theirs)
        }
    }

    /// The equivalence map, built now from every live binding if it was not yet.
    private mutating func equivalenceMap() -> [String: [Int]] {
        if let built = byEquivalence { return built }
        var map: [String: [Int]] = [:]
        for i in slots.indices {
            guard let b = slots[i] else { continue }
            let uri = parsed[i] ?? parse(b.uriText)
            parsed[i] = uri
            if let uri { map[uri.equivalenceKey, default: []].append(i) }
        }
        byEquivalence = map
        return map
    }

    private func parse(_ text: Substring) -> SIPURI? {
        WorkCounter.count(1)
        return SIPURI(String(text))
    }

    subscript(position: Int) -> Binding? { slots[position] }

    /// Adds a binding; `parsed` is its URI when the caller parsed it already.
    mutating func append(_ b: Binding, parsed uri: SIPURI? = nil) {
        slots.append(nil)
        parsed.append(nil)
        count += 1
        put(b, at: slots.count - 1, parsed: uri)
    }

    /// Replaces the binding at `position` (a refresh, possibly with another URI text), in place.
    mutating func replace(at position: Int, with b: Binding, parsed uri: SIPURI? = nil) {
        if slots[position] == nil { count += 1 }
        put(b, at: position, parsed: uri)
    }

    private mutating func put(_ b: Binding, at i: Int, parsed given: SIPURI?) {
        let old = slots[i]
        slots[i] = b
        let text = b.uriText
        if old.map({ $0.uriText != text }) ?? true {
            byText[String(text), default: []].append(i)
            parsed[i] = given
            if byEquivalence != nil {
                // The map is in use: keep it complete.
                let uri = given ?? parse(text)
                parsed[i] = uri
                if let uri { byEquivalence?[uri.equivalenceKey, default: []].append(i) }
            }
        }
        if let instance = b.instanceID, old?.instanceID != instance || old?.regID != b.regID {
            byInstance[InstanceKey(instance: instance, regID: b.regID), default: []].append(i)
        }
    }

    @discardableResult
    mutating func remove(at position: Int) -> Binding? {
        guard let b = slots[position] else { return nil }
        slots[position] = nil
        count -= 1
        return b
    }
}
