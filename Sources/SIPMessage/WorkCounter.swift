import Synchronization

/// Counts units of work done by code whose cost must stay linear in its input (unfolding
/// folded header lines, searching a stream for the end of a head, matching contacts), so
/// that tests can assert on how the work grows with the input instead of on wall time,
/// which is noise on a shared machine. Nothing is counted unless a test binds a counter:
///
/// ```swift
/// let counter = WorkCounter()
/// WorkCounter.$current.withValue(counter) { _ = try? parser.parse(bytes) }
/// #expect(counter.value < 4 * bytes.count)
/// ```
package final class WorkCounter: Sendable {
    @TaskLocal package static var current: WorkCounter?

    private let total = Mutex(0)

    package init() {}

    package var value: Int { total.withLock { $0 } }

    package func add(_ n: Int) { total.withLock { $0 += n } }

    /// Adds `n` to the bound counter, if any.
    @inline(__always)
    package static func count(_ n: Int) {
        current?.add(n)
    }
}
