import Foundation

/// Text that several threads append to (a child's output read by a pipe's handler, answers
/// collected by concurrent clients) and a test reads.
public final class LockedText: @unchecked Sendable {
    // Safety: `text` is only read or written while holding `lock`.
    private let lock = NSLock()
    private var text = ""

    /// An empty text.
    public init() {}

    /// Appends `s`.
    public func append(_ s: String) { lock.lock(); text += s; lock.unlock() }

    /// Everything appended so far.
    public var value: String { lock.lock(); defer { lock.unlock() }; return text }
}

/// Waits (bounded, polling every 20 ms) until `condition` holds; whether it does in the end.
public func eventually(timeout: TimeInterval, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}
