import Logging
import SIPRegistrar
import Synchronization

/// Batches concurrent submissions into one transaction, one batch at a time, for every store.
/// The store brings only its backend: a closure that writes a batch in one transaction and
/// claims each submission (``CommitSubmission/claim()``) just before sending it.
///
/// Without a ``Limit`` (SQLite) each submission waits for its transaction's real outcome (a busy
/// database fails within its busy timeout and rolls back), so nothing answered with an error is
/// ever committed later, and nothing is withdrawn. With one (PostgreSQL), a batch's waiters are
/// answered within the limit, and a commit given up on that lands all the same is reported.
package actor GroupCommitter {
    /// Writes one batch in one transaction.
    package typealias Backend = @Sendable ([CommitSubmission]) async throws -> Void

    /// How long a batch may take, and what to do with a commit that outlives it.
    package struct Limit: Sendable {
        /// How long the waiters of a batch wait for its commit.
        package var wait: Duration
        /// Called with the addresses of record of a commit that landed after its waiters were answered.
        package var onLateCommit: @Sendable ([String]) -> Void
        /// Where failed and overdue commits are logged.
        package var logger: Logger
        /// How an error is named in the log.
        package var describe: @Sendable (any Error) -> String

        package init(wait: Duration, logger: Logger, describe: @escaping @Sendable (any Error) -> String,
                     onLateCommit: @escaping @Sendable ([String]) -> Void) {
            self.wait = wait
            self.logger = logger
            self.describe = describe
            self.onLateCommit = onLateCommit
        }
    }

    private let backend: Backend
    private let limit: Limit?
    private var pending: [CommitSubmission] = []
    private var draining = false

    package init(limit: Limit? = nil, backend: @escaping Backend) {
        self.limit = limit
        self.backend = backend
    }

    /// Queues a submission; its outcome arrives through ``CommitSubmission/wait()``.
    package func enqueue(_ submission: CommitSubmission) {
        pending.append(submission)
        if !draining {
            draining = true
            Task { await self.drain() }
        }
    }

    /// Queues `changes` and returns once they are committed (or throws why not).
    package func submit(_ changes: [BindingChange]) async throws {
        let submission = CommitSubmission(changes)
        enqueue(submission)
        try await submission.wait()
    }

    private func drain() async {
        while !pending.isEmpty {
            let batch = pending
            pending = []
            if let limit {
                await commit(batch, within: limit)
            } else {
                do {
                    try await backend(batch)
                    for s in batch { s.finish(.success(())) }
                } catch {
                    for s in batch { s.finish(.failure(error)) }
                }
            }
        }
        draining = false
    }

    private func commit(_ batch: [CommitSubmission], within limit: Limit) async {
        // The waiters are answered within the limit. A commit given up on may still land: whichever
        // of the two sides comes second reports it, so that the addresses of record are read back.
        let race = CommitRace()
        let aors = Array(Set(batch.flatMap { $0.changes.map(\.aor) }))
        let backend = self.backend
        let work = Task {
            try await backend(batch)
            if race.state.withLock({ r -> Bool in r.landed = true; return r.gaveUp }) { limit.onLateCommit(aors) }
        }
        do {
            _ = try await withTimeout(limit.wait) {
                try await work.value
                return true
            }
            for s in batch { s.finish(.success(())) }
        } catch {
            if race.state.withLock({ r -> Bool in r.gaveUp = true; return r.landed }) { limit.onLateCommit(aors) }
            limit.logger.debug("commit failed", metadata: ["error": "\(limit.describe(error))", "changes": "\(batch.count)"])
            // Those not sent yet never will be (a connection never came): then nothing is on its way.
            for s in batch { s.withdraw(error) }
            let sent = batch.contains { $0.isSent }
            for s in batch { s.finish(.failure(error)) }
            guard sent else {
                work.cancel()
                return
            }
            // The next batch waits until this one has really finished, so that a commit landing late
            // cannot overtake one submitted after it (an unregister, say); meanwhile new submissions
            // are withdrawn at their own limit (503). Bounded too, at twice the first limit: a
            // connection can hang for good (seen when the server restarts), and that must not stop
            // this node from committing once the database answers again.
            do {
                _ = try await withTimeout(limit.wait) {
                    try await work.value
                    return true
                }
            } catch is StoreTimeout {
                work.cancel()
                limit.logger.warning("a commit did not finish in time; later commits go ahead of it")
            } catch {
                // It finished, failing: nothing landed.
            }
        }
    }
}

/// Whether a commit landed and whether its committer gave up waiting for it.
final class CommitRace: Sendable {
    let state = Mutex((landed: false, gaveUp: false))
}
