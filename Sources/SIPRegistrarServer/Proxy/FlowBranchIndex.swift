/// The branches sent over each flow whose transactions are not over, so that a flow that
/// closes fails them at once (430 or 480, RFC 5626 5.3) instead of leaving them to Timer B
/// or F.
///
/// Every operation costs in proportion to what it names, never to what the flow carries: a
/// flow to a busy callee (an edge proxy, a gateway) carries thousands of branches at once,
/// one per transaction still in its timers, and a termination that scanned them all made
/// each call cost more than the one before.
struct FlowBranchIndex<Key: Hashable & Sendable> {
    /// A branch of a transaction.
    struct BranchRef: Hashable, Sendable {
        var key: Key
        var branch: Int
    }

    private var byFlow: [UInt64: Set<BranchRef>] = [:]

    /// Records that branch `branch` of transaction `key` went out over `flow`.
    mutating func insert(flow: UInt64, key: Key, branch: Int) {
        byFlow[flow, default: []].insert(BranchRef(key: key, branch: branch))
    }

    /// Forgets the branches a terminated transaction sent, each with its flow.
    mutating func remove(key: Key, sent: [(flow: UInt64, branch: Int)]) {
        for (flow, branch) in sent {
            guard byFlow[flow]?.remove(BranchRef(key: key, branch: branch)) != nil, byFlow[flow]?.isEmpty == true else { continue }
            byFlow[flow] = nil
        }
    }

    /// The branches still pending on a flow that closed; the flow is forgotten.
    mutating func close(flow: UInt64) -> Set<BranchRef> {
        byFlow.removeValue(forKey: flow) ?? []
    }

    /// How many flows have pending branches.
    var flowCount: Int { byFlow.count }
}
