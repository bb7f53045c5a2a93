import SIPMessage

/// A target and how to reach it, as the server's hop selection decided: the leg our Via
/// names and the Record-Route plan for it (nil: do not Record-Route).
public struct ProxyBranchTarget: Sendable, Hashable {
    /// Where the branch goes.
    public var target: ProxyTarget
    /// Our side of the hop (Via sent-by and transport).
    public var via: ProxyLeg
    /// How the branch is Record-Routed, if it is.
    public var recordRoute: RecordRoutePlan?

    /// Builds a branch target.
    public init(target: ProxyTarget, via: ProxyLeg, recordRoute: RecordRoutePlan? = nil) {
        self.target = target
        self.via = via
        self.recordRoute = recordRoute
    }
}

/// The target set of RFC 3261 16.5 ordered for forking (16.6): groups of equal q,
/// highest q first, tried in parallel within a group and one group after the other.
public struct TargetSet: Sendable, Hashable {
    /// The groups, highest q first; order within a group is the order given.
    public private(set) var groups: [[ProxyBranchTarget]]

    /// Groups `targets` by q (absent q counts as 1.0, RFC 3261 16.6 step 1). A target whose
    /// URI is equivalent (19.1.4) to an earlier one on the same flow is dropped: a target is
    /// never added twice (16.5).
    public init(_ targets: [ProxyBranchTarget]) {
        var unique: [ProxyBranchTarget] = []
        for t in targets where !unique.contains(where: {
            $0.target.flowID == t.target.flowID && $0.target.uri.isEquivalent(to: t.target.uri)
        }) {
            unique.append(t)
        }
        let qs = Set(unique.map(\.target.effectiveQ)).sorted(by: >)
        groups = qs.map { q in unique.filter { $0.target.effectiveQ == q } }
    }

    /// The number of targets.
    public var count: Int { groups.reduce(0) { $0 + $1.count } }
}
