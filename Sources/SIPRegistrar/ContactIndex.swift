import SIPMessage

/// The bindings of one address of record while a REGISTER is applied, indexed so that
/// finding the binding a contact names costs a dictionary lookup, not a comparison with
/// every stored binding (each of which used to parse the stored URI again).
///
/// A contact names a binding with the same `+sip.instance` and `reg-id` when the contact
/// has an instance (RFC 5626 6), else one with the same URI text or an equivalent URI
/// (RFC 3261 19.1.4). Each binding's URI is parsed once, when it enters the index.
/// Removal leaves a hole, so positions stay valid; ``bindings`` drops the holes.
struct ContactIndex {
    private var slots: [Binding?] = []
    private var parsed: [SIPURI?] = []
    private var byText: [String: [Int]] = [:]
    private var byEquivalence: [String: [Int]] = [:]
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
    func find(_ key: ContactKey) -> Int? {
        if let instance = key.instance {
            return byInstance[InstanceKey(instance: instance, regID: key.regID)]?.first { i in
                guard let b = slots[i] else { return false }
                return b.instanceID == instance && b.regID == key.regID
            }
        }
        if let hit = byText[key.uriText]?.first(where: { slots[$0].map { $0.uriText == key.uriText } ?? false }) { return hit }
        guard let theirs = key.uri else { return nil }
        return byEquivalence[theirs.equivalenceKey]?.first { i in
            guard slots[i] != nil, let mine = parsed[i] else { return false }
            WorkCounter.count(1)
            return mine.isEquivalent(to: theirs)
        }
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
            let owned = String(text)
            let uri: SIPURI?
            if let given {
                uri = given
            } else {
                uri = SIPURI(owned)
                WorkCounter.count(1)
            }
            parsed[i] = uri
            byText[owned, default: []].append(i)
            if let uri { byEquivalence[uri.equivalenceKey, default: []].append(i) }
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
