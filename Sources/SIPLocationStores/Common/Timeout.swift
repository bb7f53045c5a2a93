import Synchronization

/// A time limit for a database call: a PostgreSQL that does not answer must turn into a
/// 503 within seconds, not a REGISTER that hangs.
package struct StoreTimeout: Error, CustomStringConvertible {
    package init() {}

    package var description: String { "the database did not answer in time" }
}

/// Runs `body` and returns its result, or throws ``StoreTimeout`` after `limit` (and cancels `body`).
package func withTimeout<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    // Unstructured on purpose: a task group would wait for the work to notice cancellation,
    // and a connection lease against a database that is down does not.
    let race = TimeoutRace<T>()
    return try await withCheckedThrowingContinuation { (c: CheckedContinuation<T, any Error>) in
        race.arm(c)
        let work = Task {
            do { race.finish(.success(try await body())) } catch { race.finish(.failure(error)) }
        }
        let timer = Task {
            try? await Task.sleep(for: limit)
            if race.finish(.failure(StoreTimeout())) { work.cancel() }
        }
        race.onFinish { timer.cancel() }
    }
}

/// Whichever of work and timer finishes first resumes the caller; the other is ignored.
final class TimeoutRace<T: Sendable>: Sendable {
    private struct State {
        var continuation: CheckedContinuation<T, any Error>?
        var done = false
        var onFinish: (@Sendable () -> Void)?
    }

    private let state = Mutex<State>(State())

    func arm(_ c: CheckedContinuation<T, any Error>) { state.withLock { $0.continuation = c } }

    func onFinish(_ body: @escaping @Sendable () -> Void) {
        let runNow = state.withLock { s -> Bool in
            if s.done { return true }
            s.onFinish = body
            return false
        }
        if runNow { body() }
    }

    @discardableResult
    func finish(_ result: Result<T, any Error>) -> Bool {
        let (c, hook) = state.withLock { s -> (CheckedContinuation<T, any Error>?, (@Sendable () -> Void)?) in
            guard !s.done else { return (nil, nil) }
            s.done = true
            defer { s.continuation = nil; s.onFinish = nil }
            return (s.continuation, s.onFinish)
        }
        guard let c else { return false }
        c.resume(with: result)
        hook?()
        return true
    }
}
