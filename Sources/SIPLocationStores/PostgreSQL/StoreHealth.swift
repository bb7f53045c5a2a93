import Logging
import Synchronization

/// Whether the database answers, with one log line per change of state.
package final class StoreHealth: Sendable {
    private let isUp = Mutex<Bool>(true)
    package let onChange: @Sendable (Bool) -> Void

    package init(onChange: @escaping @Sendable (Bool) -> Void = { _ in }) { self.onChange = onChange }

    package var up: Bool { isUp.withLock { $0 } }

    package func up(logger: Logger) {
        let changed = isUp.withLock { v -> Bool in
            defer { v = true }
            return !v
        }
        if changed {
            logger.notice("PostgreSQL reachable again: REGISTERs are committed again")
            onChange(true)
        }
    }

    package func down(_ error: any Error, logger: Logger) {
        let changed = isUp.withLock { v -> Bool in
            defer { v = false }
            return v
        }
        if changed {
            logger.error("PostgreSQL unreachable: REGISTERs get 503 until it is back; lookups use the local index",
                         metadata: ["error": "\(describePostgresError(error))"])
            onChange(false)
        }
    }
}

/// PostgresNIO keeps details out of `description`; the reflection names the cause (no password is in it).
package func describePostgresError(_ error: any Error) -> String {
    if error is StoreTimeout { return "\(error)" }
    let text = String(reflecting: error)
    return text.count > 400 ? String(text.prefix(400)) + "…" : text
}
