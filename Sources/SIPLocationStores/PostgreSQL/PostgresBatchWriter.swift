import Logging
import PostgresNIO
import SIPRegistrar

/// The PostgreSQL backend of the group committer: one transaction for a batch of submissions,
/// one statement per kind of change, then the change log and one notification.
struct PostgresBatchWriter: Sendable {
    let client: PostgresClient
    let node: String
    let logger: Logger
    let changeLog: PostgresChangeLog
    /// Test only: `SIP_REGISTRAR_TEST_COMMIT_DELAY_MS=PATTERN=MS` makes a commit that stores a binding
    /// of an address of record containing PATTERN wait MS milliseconds after its change-log insert,
    /// before COMMIT, to force commits out of order or past the committer's limit (removals are
    /// never delayed). Nil (nothing happens) unless the variable is set.
    let testCommitDelay: (pattern: String, delay: Duration)?

    /// Parses `PATTERN=MS` (or `MS` alone: every commit).
    static func parseTestCommitDelay(_ text: String?) -> (pattern: String, delay: Duration)? {
        guard let text, !text.isEmpty else { return nil }
        let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
        let pattern = parts.count == 2 ? parts[0] : ""
        guard let ms = Int(parts.count == 2 ? parts[1] : parts[0]), ms > 0 else { return nil }
        return (pattern, .milliseconds(ms))
    }

    /// Submissions withdrawn while the connection was awaited are left out; the others are claimed
    /// (no longer withdrawable) before the first statement is sent.
    func commit(_ batch: [CommitSubmission]) async throws {
        try await client.withConnection { conn in
            let live = batch.filter { $0.claim() }
            guard !live.isEmpty else { return }
            try await commit(CommitPlan(live.flatMap(\.changes)), on: conn)
        }
    }

    private func commit(_ plan: CommitPlan, on conn: PostgresConnection) async throws {
        try await conn.withTransaction(logger: logger) { tx in
            // One statement per kind of change for the whole batch: round trips, not rows, are what a commit costs.
            if !plan.upserts.isEmpty {
                _ = try await tx.query(try PostgresBindingTable.upsert(plan.upserts, node: node), logger: logger).collect()
            }
            if !plan.removals.isEmpty {
                let aors = plan.removals.map(\.aor), uris = plan.removals.map(\.uri)
                _ = try await tx.query("""
                    DELETE FROM sip_registrar_bindings b USING unnest(\(aors)::text[], \(uris)::text[]) AS x(aor, uri)
                    WHERE b.aor = x.aor AND b.uri = x.uri
                    """, logger: logger).collect()
            }
            if !plan.expiries.isEmpty {
                let aors = plan.expiries.map(\.aor), uris = plan.expiries.map(\.uri), ats = plan.expiries.map(\.at)
                _ = try await tx.query("""
                    DELETE FROM sip_registrar_bindings b USING unnest(\(aors)::text[], \(uris)::text[], \(ats)::int8[]) AS x(aor, uri, at)
                    WHERE b.aor = x.aor AND b.uri = x.uri AND b.expires_at <= x.at
                    """, logger: logger).collect()
            }
            try await changeLog.record(plan.aors, in: tx)
            if let hook = testCommitDelay, plan.upserts.contains(where: { hook.pattern.isEmpty || $0.aor.contains(hook.pattern) }) {
                // In the database, as a slow server would be: cancelling the task does not shorten it.
                let (s, attoseconds) = hook.delay.components
                let seconds = Double(s) + Double(attoseconds) / 1e18
                _ = try await tx.query("SELECT pg_sleep(\(seconds))", logger: logger).collect()
            }
        }
    }
}
