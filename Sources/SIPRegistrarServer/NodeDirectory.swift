import Logging
import SIPMessage
import Synchronization

/// Where the other nodes sharing a PostgreSQL store are reached (`node_address`), as they
/// publish it in the store's node table (`PostgresNodeTable`): a request for a contact whose flow another node
/// holds is forwarded there (issue "Several nodes, one truth", item 3). A node that has
/// not refreshed its row for ``staleAfter`` is taken for gone: its flows count as failed.
final class NodeDirectory: Sendable {
    struct Entry: Sendable, Equatable {
        var address: SIPURI
        /// Seconds since the node last refreshed its row, when the directory was read.
        var age: Double
        /// When the directory was read.
        var readAt: ContinuousClock.Instant
    }

    /// A node is gone after this long without a heartbeat (three missed refreshes).
    static let staleAfter = 16.0
    /// How often a node refreshes its own row and reads the others'.
    static let refreshEvery = Duration.seconds(5)

    private let entries = Mutex<[String: Entry]>([:])

    /// The address of a node that is alive, nil when it is unknown or gone.
    func address(of node: String) -> SIPURI? {
        let now = ContinuousClock.now
        return entries.withLock { e in
            guard let entry = e[node], entry.age + Double((now - entry.readAt).nanosecondsValue) / 1e9 < Self.staleAfter else {
                return nil
            }
            return entry.address
        }
    }

    /// Replaces every entry with `rows` (node, address, seconds since its heartbeat); an address
    /// that is not a SIP URI is left out.
    func replace(_ rows: [(String, String, Double)]) {
        let now = ContinuousClock.now
        var fresh: [String: Entry] = [:]
        for (node, text, age) in rows {
            guard let uri = SIPURI(text), uri.isSIP else { continue }
            fresh[node] = Entry(address: uri, age: age, readAt: now)
        }
        entries.withLock { $0 = fresh }
    }
}
