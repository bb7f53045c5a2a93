import Foundation
import SIPTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Three registrar processes on one real PostgreSQL: whatever the order in which their commits
/// land, whichever node dies and whenever the database goes away, every node ends up showing
/// exactly what the table holds, nothing answered 200 is lost and nothing unregistered comes back.
@Suite(.serialized) struct ConvergenceTests {
    /// Node processes on `pg` (stopped by the caller), named node-a, node-b, …
    func nodes(_ pg: PostgresServer, _ count: Int = 3, env: [String: String] = [:]) throws -> [ServerProcess] {
        var started: [ServerProcess] = []
        do {
            for i in 0..<count {
                let name = "node-\(Character(UnicodeScalar(UInt8(97 + i))))"
                started.append(try ServerProcess.start(["--log-level", "notice"], store: pg.url,
                                                       env: pg.env.merging(env) { $1 }.merging(["SIP_REGISTRAR_NODE": name]) { $1 }))
            }
        } catch {
            for s in started { s.stop() }
            throw error
        }
        return started
    }

    /// One REGISTER over UDP; the status code (0: no answer).
    func register(_ user: String, port: Int, contact: String, expires: Int = 600, timeout: Int = 10) -> Int {
        let answer = SIPClient.udp(SIPClient.register(user: user, contact: contact, expires: expires), port: port, timeout: timeout) ?? ""
        guard answer.hasPrefix("SIP/2.0 "), let code = Int(answer.dropFirst(8).prefix(3)) else { return 0 }
        return code
    }

    /// A node's whole index through the admin API: "aor uri node", sorted.
    /// The body goes to a file, not through a pipe: `run`'s pipe reading can reorder the chunks of a
    /// large output under load (seen with 150 KB dumps).
    func dump(_ s: ServerProcess) throws -> [String] {
        let file = NSTemporaryDirectory() + "dump-\(UUID().uuidString).json"
        defer { try? FileManager.default.removeItem(atPath: file) }
        let r = try run("/usr/bin/curl", ["-s", "-o", file, "-w", "%{http_code}", "-H", "Authorization: Bearer \(s.token ?? "")",
                                          s.adminURL + "/v1/bindings?offset=0&limit=1000"])
        let body = (try? Data(contentsOf: URL(fileURLWithPath: file))) ?? Data()
        guard r.out == "200", let object = try JSONSerialization.jsonObject(with: body) as? [String: Any],
              let contacts = object["contacts"] as? [[String: Any]] else {
            throw Failure(description: "dump: \(r.out) \(String(decoding: body.prefix(200), as: UTF8.self))")
        }
        return contacts.map { "\($0["aor"] as? String ?? "?") \($0["uri"] as? String ?? "?") \($0["node"] as? String ?? "?")" }.sorted()
    }

    /// The table: "aor uri node", sorted.
    func table(_ pg: PostgresServer) throws -> [String] {
        try pg.sql("SELECT aor || ' ' || uri || ' ' || node FROM sip_registrar_bindings ORDER BY 1")
            .split(separator: "\n").map(String.init).sorted()
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    /// Polls until every node's dump equals the table; the time it took, or nil after `limit`.
    func converge(_ pg: PostgresServer, _ nodes: [ServerProcess], limit: TimeInterval = 4) throws -> TimeInterval? {
        let start = Date()
        while Date().timeIntervalSince(start) < limit {
            let t = try table(pg)
            if try nodes.allSatisfy({ try dump($0) == t }) { return Date().timeIntervalSince(start) }
            usleep(20_000)
        }
        return nil
    }

    /// What differs between each node and the table (for failure messages).
    func differences(_ pg: PostgresServer, _ nodes: [ServerProcess]) -> String {
        nodes.map { s in
            guard let t = try? Set(table(pg)), let d = try? Set(dump(s)) else { return "unreadable" }
            return "missing \(t.subtracting(d).sorted().prefix(5)), extra \(d.subtracting(t).sorted().prefix(5))"
        }.joined(separator: "; ")
    }

    /// Runs `body(thread)` on `count` threads at once and waits for all of them.
    func parallel(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let group = DispatchGroup()
        for t in 0..<count {
            group.enter()
            Thread {
                body(t)
                group.leave()
            }.start()
        }
        group.wait()
    }

    /// The replication lag histogram of a node's /metrics: (count, sum in seconds, buckets le → cumulative count).
    func lagHistogram(_ s: ServerProcess) throws -> (count: Double, sum: Double, buckets: [(Double, Double)]) {
        let text = try http("GET", s.adminURL + "/metrics").body
        var count = 0.0, sum = 0.0
        var buckets: [(Double, Double)] = []
        for line in text.split(separator: "\n") where line.hasPrefix("sip_replication_lag_seconds") {
            let parts = line.split(separator: " ")
            guard parts.count >= 2, let v = Double(parts[parts.count - 1]) else { continue }
            if line.hasPrefix("sip_replication_lag_seconds_count") { count = v }
            if line.hasPrefix("sip_replication_lag_seconds_sum") { sum = v }
            if line.hasPrefix("sip_replication_lag_seconds_bucket"), let q = line.range(of: "le=\""),
               let end = line[q.upperBound...].firstIndex(of: "\"") {
                let le = String(line[q.upperBound..<end])
                buckets.append((le == "+Inf" ? .infinity : Double(le) ?? .infinity, v))
            }
        }
        return (count, sum, buckets.sorted { $0.0 < $1.0 })
    }

    @Test func concurrentWritesFromThreeNodesConvergeDespiteOutOfOrderCommits() throws {
        let pg = try PostgresServer()
        defer { pg.destroy() }
        // Test-only fault: commits that touch a "slow…" address wait 150 ms between their change-log
        // insert and COMMIT, so that without ordering later numbers would commit first.
        let all = try nodes(pg, env: ["SIP_REGISTRAR_TEST_COMMIT_DELAY_MS": "slow=150"])
        defer { for s in all { s.stop() } }
        let users = (0..<12).map { "conv\($0)" } + (0..<4).map { "slow\($0)" }
        let answers = LockedText()
        let ports = all.map(\.udp)
        // 3 nodes × 4 threads, each a random mix of REGISTERs and unregisters for the same 16 addresses.
        parallel(12) { t in
            var rng = SystemRandomNumberGenerator()
            let port = ports[t % 3]
            for _ in 0..<30 {
                let user = users[Int.random(in: 0..<users.count, using: &rng)]
                let contact = "<sip:\(user)@127.0.0.1:\(5000 + Int.random(in: 0..<3, using: &rng))>"
                let code: Int
                switch Int.random(in: 0..<10, using: &rng) {
                case 0..<6: code = register(user, port: port, contact: contact)
                case 6..<9: code = register(user, port: port, contact: contact, expires: 0)
                default: code = register(user, port: port, contact: "*", expires: 0)
                }
                answers.append("\(code)\n")
            }
        }
        let codes = answers.value.split(separator: "\n")
        #expect(codes.count == 360)
        #expect(codes.allSatisfy { $0 == "200" }, "not all 200: \(Dictionary(grouping: codes, by: { $0 }).mapValues(\.count))")
        let took = try converge(pg, all)
        #expect(took != nil, "no convergence: \(differences(pg, all))")
        print("convergence: 3 nodes equal to the table \(Int((took ?? -1) * 1000)) ms after the load stopped; \(try table(pg).count) bindings")
        let metrics = try all.map { try http("GET", $0.adminURL + "/metrics").body }
        #expect(metrics.allSatisfy { $0.contains("sip_replication_lag_seconds_count") })
        // Commits held 150 ms under the log lock: other nodes' commits waited for it.
        #expect(metrics.contains { $0.contains("sip_replication_lock_waits_total") }, "no commit ever waited for the log lock")

        // The lag without load: one REGISTER at a time on each node in turn, seen by the two others
        // (the histograms' growth meanwhile; the median interpolated within its bucket).
        let before = try merged(all)
        for i in 0..<30 { _ = register("lag\(i)", port: ports[i % 3], contact: "<sip:lag\(i)@127.0.0.1:9>") }
        #expect(try converge(pg, all) != nil)
        let after = try merged(all)
        let count = after.count - before.count, sum = after.sum - before.sum
        var buckets: [(Double, Double)] = []
        for (le, v) in after.buckets { buckets.append((le, v - (before.buckets.first { $0.0 == le }?.1 ?? 0))) }
        var median = Double.nan, lower = 0.0, below = 0.0
        for (le, v) in buckets {
            if v >= count / 2, v > below {
                median = le.isFinite ? lower + (le - lower) * (count / 2 - below) / (v - below) : lower
                break
            }
            lower = le
            below = v
        }
        print("replication lag without load: \(Int(count)) samples, median ≈ \(String(format: "%.1f", median * 1000)) ms, "
              + "mean \(String(format: "%.1f", count > 0 ? sum / count * 1000 : -1)) ms")
        #expect(count >= 60, "every REGISTER is applied on the two other nodes")
    }

    /// The three nodes' lag histograms added up.
    func merged(_ nodes: [ServerProcess]) throws -> (count: Double, sum: Double, buckets: [(Double, Double)]) {
        var count = 0.0, sum = 0.0
        var merged: [Double: Double] = [:]
        for s in nodes {
            let h = try lagHistogram(s)
            count += h.count
            sum += h.sum
            for (le, v) in h.buckets { merged[le, default: 0] += v }
        }
        return (count, sum, merged.keys.sorted().map { ($0, merged[$0, default: 0]) })
    }

    @Test func aNodeKilledDuringABurstLosesNothingThatGotA200() throws {
        let pg = try PostgresServer()
        defer { pg.destroy() }
        let all = try nodes(pg)
        defer { for s in all { s.stop() } }
        let ok = LockedText()
        let ports = all.map(\.udp)
        let killed = LockedText()
        let killer = Thread {
            // Mid-burst: once a good part of the REGISTERs were answered.
            while ok.value.split(separator: "\n").count < 150 { usleep(2_000) }
            all[2].signal(SIGKILL)
            killed.append("killed")
        }
        killer.start()
        parallel(9) { t in
            for i in 0..<60 {
                if t % 3 == 2 && !killed.value.isEmpty { break }
                let user = "kill\(t)-\(i)"
                if register(user, port: ports[t % 3], contact: "<sip:\(user)@127.0.0.1:9>", timeout: 2) == 200 { ok.append("\(user)\n") }
            }
        }
        all[2].wait()
        let got = Set(ok.value.split(separator: "\n").map { "\($0)@example.com" })
        print("kill: \(got.count) REGISTERs answered 200 (of 540), node-c killed mid-burst")
        #expect(got.count > 150)
        let survivors = Array(all.prefix(2))
        #expect(try converge(pg, survivors) != nil, "no convergence: \(differences(pg, survivors))")
        let stored = Set(try table(pg).map { String($0.split(separator: " ")[0]) })
        #expect(got.subtracting(stored).isEmpty, "lost from the table after a 200: \(got.subtracting(stored).sorted().prefix(5))")
        for s in survivors {
            let shown = Set(try dump(s).map { String($0.split(separator: " ")[0]) })
            #expect(got.subtracting(shown).isEmpty, "missing on a survivor: \(got.subtracting(shown).sorted().prefix(5))")
        }
    }

    @Test func databaseRestartDuringLoadLosesNothingAndResurrectsNothing() throws {
        let pg = try PostgresServer()
        defer { pg.destroy() }
        let all = try nodes(pg)
        defer { for s in all { s.stop() } }
        let log = LockedText()
        let ports = all.map(\.udp)
        let done = LockedText()
        let outage = Thread {
            while log.value.split(separator: "\n").count < 60 { usleep(2_000) }
            // Down for longer than a commit may wait (3 s).
            pg.stop()
            sleep(4)
            try? pg.start()
            done.append("restarted")
        }
        outage.start()
        // Per thread, its own addresses one after the other: REGISTER, then (every other one) unregister at once,
        // whatever the REGISTER got: an unregister right after a 503 is where a late commit would resurrect.
        parallel(9) { t in
            var afterRestart = 0
            for i in 0..<400 where afterRestart < 10 {
                let user = "pg\(t)-\(i)"
                let contact = "<sip:\(user)@127.0.0.1:9>"
                let r = register(user, port: ports[t % 3], contact: contact)
                var line = "\(user) \(r)"
                if i % 2 == 0 { line += " \(register(user, port: ports[t % 3], contact: contact, expires: 0))" }
                log.append(line + "\n")
                if done.value.contains("restarted") { afterRestart += 1 }
            }
        }
        while !done.value.contains("restarted") { usleep(20_000) }
        let lines = log.value.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
        let codes = lines.flatMap { $0.dropFirst() }
        let refused = codes.filter { $0 == "503" }.count
        print("database restart: \(lines.count) addresses, \(codes.filter { $0 == "200" }.count) × 200, \(refused) × 503, \(codes.count - refused - codes.filter { $0 == "200" }.count) other")
        #expect(codes.allSatisfy { $0 == "200" || $0 == "503" }, "only 200 or 503 expected")
        #expect(refused >= 1, "the outage was not noticed")

        // Every node recovers by itself, then all show the table.
        for s in all {
            #expect(waitFor(20) { register("after-\(s.udp)", port: s.udp, contact: "<sip:after@127.0.0.1:9>") == 200 }, "no recovery")
        }
        #expect(try converge(pg, all, limit: 10) != nil, "no convergence: \(differences(pg, all))")
        let stored = Set(try table(pg).map { String($0.split(separator: " ")[0].split(separator: "@")[0]) })
        let kept = lines.filter { $0.count == 2 && $0[1] == "200" }.map { $0[0] }
        let removed = lines.filter { $0.count == 3 && $0[2] == "200" }.map { $0[0] }
        let resurrectable = lines.filter { $0.count == 3 && $0[1] == "503" && $0[2] == "200" }.count
        print("database restart: \(kept.count) kept, \(removed.count) unregistered with 200 (\(resurrectable) right after a 503)")
        #expect(kept.filter { !stored.contains($0) }.isEmpty, "lost after a 200: \(kept.filter { !stored.contains($0) }.prefix(5))")
        #expect(removed.filter { stored.contains($0) }.isEmpty, "resurrected: \(removed.filter { stored.contains($0) }.prefix(5))")
        // Late commits would land within seconds: look again after the committer's limit.
        sleep(2)
        let later = Set(try table(pg).map { String($0.split(separator: " ")[0].split(separator: "@")[0]) })
        #expect(removed.filter { later.contains($0) }.isEmpty, "resurrected later: \(removed.filter { later.contains($0) }.prefix(5))")
        #expect(try converge(pg, all) != nil)
    }

    @Test func aNodeThatMissedPrunedChangesReloadsEverything() throws {
        let pg = try PostgresServer()
        defer { pg.destroy() }
        // Started while the log is empty: the case a "last read is 0" test used to miss.
        let all = try nodes(pg, 2)
        defer { for s in all { s.stop() } }
        let (a, c) = (all[0], all[1])
        c.signal(SIGSTOP)
        for i in 0..<10 { #expect(register("gap\(i)", port: a.udp, contact: "<sip:gap\(i)@127.0.0.1:9>") == 200) }
        // What pruning does to a node cut off for longer than the log keeps.
        _ = try pg.sql("DELETE FROM sip_registrar_changes")
        #expect(register("gap10", port: a.udp, contact: "<sip:gap10@127.0.0.1:9>") == 200)
        c.signal(SIGCONT)
        #expect(try converge(pg, all) != nil, "no convergence: \(differences(pg, [c]))")
        #expect(try dump(c).count == 11)
        let metrics = try http("GET", c.adminURL + "/metrics").body
        #expect(metrics.contains("sip_replication_full_reloads_total 1"), "\(metrics.split(separator: "\n").filter { $0.contains("replication") })")
    }

    @Test func aCommitThatLandsLateIsNotOvertakenByTheUnregisterAfterIt() throws {
        let pg = try PostgresServer()
        defer { pg.destroy() }
        // Test-only fault: this commit takes 6 s, longer than the committer waits (5 s).
        let all = try nodes(pg, 1, env: ["SIP_REGISTRAR_TEST_COMMIT_DELAY_MS": "late=6000"])
        defer { for s in all { s.stop() } }
        let a = all[0]
        let contact = "<sip:late@127.0.0.1:9>"
        #expect(register("late", port: a.udp, contact: contact) == 503)
        // Memory holds nothing, yet the commit that was sent lands a moment later: the unregister
        // must be written, and after it.
        let off = register("late", port: a.udp, contact: contact, expires: 0)
        #expect(off == 200 || off == 503, "\(off)")
        if off == 503 { #expect(waitFor(10) { register("late", port: a.udp, contact: contact, expires: 0) == 200 }) }
        #expect(waitFor(5) { (try? pg.sql("SELECT count(*) FROM sip_registrar_changes WHERE aor = 'late@example.com'")) ?? "0" >= "2" })
        #expect(try pg.sql("SELECT count(*) FROM sip_registrar_bindings") == "0", "resurrected by the late commit")
        #expect(try dump(a).isEmpty)
    }

    func waitFor(_ limit: TimeInterval, _ check: () -> Bool) -> Bool {
        let start = Date()
        while Date().timeIntervalSince(start) < limit {
            if check() { return true }
            usleep(50_000)
        }
        return false
    }
}
