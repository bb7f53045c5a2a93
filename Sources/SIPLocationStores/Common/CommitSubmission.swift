import SIPRegistrar
import Synchronization

/// One `apply`'s changes on their way to the database. While queued (or while its batch
/// waits for a connection) it can be withdrawn: its REGISTER timed out and was answered 503,
/// so it must never land later. Once claimed by a batch about to send it, it cannot be
/// withdrawn and its REGISTER waits for the outcome.
package final class CommitSubmission: Sendable {
    /// The changes, in order.
    package let changes: [BindingChange]

    private enum Status { case queued, sent, finished }

    private struct State {
        var status = Status.queued
        var result: Result<Void, any Error>?
        var waiter: CheckedContinuation<Void, any Error>?

        /// Records the outcome; returns the waiter to resume outside the lock.
        mutating func finish(_ r: Result<Void, any Error>) -> CheckedContinuation<Void, any Error>? {
            status = .finished
            result = r
            defer { waiter = nil }
            return waiter
        }
    }

    private let state = Mutex(State())

    package init(_ changes: [BindingChange]) { self.changes = changes }

    /// Queued → sent. False if it was withdrawn meanwhile (leave it out of the batch).
    package func claim() -> Bool {
        state.withLock { s in
            guard s.status == .queued else { return false }
            s.status = .sent
            return true
        }
    }

    /// Claimed by a batch and not finished yet: its statements may be on their way.
    package var isSent: Bool { state.withLock { $0.status == .sent } }

    /// Queued → finished with `error`; nothing once it was sent.
    package func withdraw(_ error: any Error) {
        let c = state.withLock { s -> CheckedContinuation<Void, any Error>? in
            guard s.status == .queued else { return nil }
            return s.finish(.failure(error))
        }
        c?.resume(throwing: error)
    }

    /// The outcome of the commit (nothing if already finished, e.g. withdrawn).
    package func finish(_ result: Result<Void, any Error>) {
        let c = state.withLock { s -> CheckedContinuation<Void, any Error>? in
            guard s.status != .finished else { return nil }
            return s.finish(result)
        }
        c?.resume(with: result)
    }

    /// Returns once the submission is finished: committed, failed or withdrawn.
    package func wait() async throws {
        try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
            let done = state.withLock { s -> Result<Void, any Error>? in
                if let r = s.result { return r }
                s.waiter = c
                return nil
            }
            if let done { c.resume(with: done) }
        }
    }
}
