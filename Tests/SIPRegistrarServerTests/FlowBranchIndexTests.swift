@testable import SIPRegistrarServer
import Testing

/// The proxy's index of branches per flow: a terminated transaction takes away exactly its
/// own branches, and a flow that closes reports exactly the branches still pending on it.
struct FlowBranchIndexTests {
    @Test func terminationRemovesOnlyItsOwnBranches() {
        var index = FlowBranchIndex<String>()
        // Many transactions over one flow (a busy callee), one of them also over a second flow.
        for n in 0..<1_000 { index.insert(flow: 7, key: "tx\(n)", branch: 0) }
        index.insert(flow: 8, key: "tx5", branch: 1)
        index.remove(key: "tx5", sent: [(7, 0), (8, 1)])
        #expect(index.flowCount == 1, "the second flow carried only tx5's branch: it is gone")
        let pending = index.close(flow: 7)
        #expect(pending.count == 999)
        #expect(!pending.contains(.init(key: "tx5", branch: 0)))
        #expect(pending.contains(.init(key: "tx6", branch: 0)))
        #expect(index.flowCount == 0 && index.close(flow: 7).isEmpty)
    }

    @Test func sameTransactionSeveralBranchesOnOneFlow() {
        var index = FlowBranchIndex<String>()
        index.insert(flow: 1, key: "a", branch: 0)
        index.insert(flow: 1, key: "a", branch: 2)
        index.insert(flow: 1, key: "b", branch: 0)
        // A removal that names a branch never sent (or sent elsewhere) changes nothing.
        index.remove(key: "a", sent: [(2, 0), (1, 1)])
        #expect(index.flowCount == 1)
        index.remove(key: "a", sent: [(1, 0), (1, 2)])
        #expect(index.close(flow: 1) == [.init(key: "b", branch: 0)])
    }
}
