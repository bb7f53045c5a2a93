import Foundation
@testable import SIPRegistrarServer
import SIPLocationStores
import SIPMessage
import SIPRegistrar
import SIPTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Several registrar processes sharing one real PostgreSQL server.
@Suite(.serialized) struct PostgresStoreTests {
    /// Two nodes on one database (stop them with `stop()`).
    func twoNodes(_ pg: PostgresServer, _ extra: [String] = []) throws -> (ServerProcess, ServerProcess) {
        let a = try node(pg, extra, name: "node-a")
        do {
            return (a, try node(pg, extra, name: "node-b"))
        } catch {
            a.stop()
            throw error
        }
    }

    func node(_ pg: PostgresServer, _ extra: [String] = [], name: String) throws -> ServerProcess {
        try ServerProcess.start(["--log-level", "notice"] + extra, store: pg.url, env: pg.env.merging(["SIP_REGISTRAR_NODE": name]) { $1 })
    }

    func register(_ user: String, on s: ServerProcess, expires: Int = 600, contact: String? = nil) -> String {
        SIPClient.udp(SIPClient.register(user: user, contact: contact ?? "<sip:\(user)@127.0.0.1:9>", expires: expires), port: s.udp) ?? ""
    }

    func contacts(_ user: String, on s: ServerProcess) throws -> String {
        try http("GET", s.adminURL + "/v1/bindings?aor=sip:\(user)@example.com").body
    }

    /// Polls until `check` holds; returns the time it took (nil if it never did within `limit`).
    func waitUntil(_ limit: TimeInterval = 5, _ check: () throws -> Bool) rethrows -> TimeInterval? {
        let start = Date()
        while Date().timeIntervalSince(start) < limit {
            if try check() { return Date().timeIntervalSince(start) }
            usleep(5_000)
        }
        return nil
    }

    @Test func registerOnOneNodeLookUpOnTheOther() throws {
        let pg = try PostgresServer()
        defer { pg.destroy() }
        let (a, b) = try twoNodes(pg)
        defer { a.stop(); b.stop() }

        #expect(register("alice", on: a).hasPrefix("SIP/2.0 200 OK"))
        let seen = try waitUntil { try lookup(b, "sip:alice@example.com").status == 0 }
        #expect(seen != nil, "B never saw A's binding")
        print("replication A→B visible after \(Int((seen ?? -1) * 1000)) ms")
        #expect(try contacts("alice", on: b).contains("\"node\":\"node-a\""))

        // Unregister on B: A stops returning it.
        #expect(register("alice", on: b, expires: 0).hasPrefix("SIP/2.0 200 OK"))
        #expect(try waitUntil { try lookup(a, "sip:alice@example.com").status == 1 } != nil, "A still returns alice")

        // A binding on a TLS connection records the node that holds the connection.
        let tls = try SIPClient.tls(SIPClient.register(user: "carol", contact: "<sip:carol@127.0.0.1:9;transport=tls>", transport: "TLS"),
                                    port: a.tls)
        #expect(tls.contains("SIP/2.0 200 OK"))
        #expect(try waitUntil { try contacts("carol", on: b).contains("\"transport\":\"tls\"") } != nil)
        #expect(try contacts("carol", on: b).contains("\"node\":\"node-a\""))

        // The database holds what both nodes show.
        #expect(try pg.sql("SELECT count(*) FROM sip_registrar_bindings WHERE aor = 'carol@example.com'") == "1")
        #expect(try pg.sql("SELECT count(*) FROM sip_registrar_bindings WHERE aor = 'alice@example.com'") == "0")
    }

    @Test func expiryOnBothNodes() throws {
        let pg = try PostgresServer()
        defer { pg.destroy() }
        let limits = ["--min-expires", "1", "--max-expires", "2"]
        let (a, b) = try twoNodes(pg, limits)
        defer { a.stop(); b.stop() }
        #expect(register("dave", on: a, expires: 2).hasPrefix("SIP/2.0 200 OK"))
        #expect(try waitUntil { try lookup(b, "sip:dave@example.com").status == 0 } != nil)
        sleep(3)
        #expect(try lookup(a, "sip:dave@example.com").status == 1)
        #expect(try lookup(b, "sip:dave@example.com").status == 1)
        #expect(try waitUntil { try pg.sql("SELECT count(*) FROM sip_registrar_bindings") == "0" } != nil, "expired rows stay")
    }

    @Test func restartDuringABurstLosesNothingThatGotA200() throws {
        let pg = try PostgresServer()
        defer { pg.destroy() }
        let (a, b) = try twoNodes(pg)
        defer { a.stop(); b.stop() }

        let results = LockedText()
        let burst = Thread {
            for i in 0..<400 {
                let answer = SIPClient.udp(SIPClient.register(user: "burst\(i)", contact: "<sip:burst\(i)@127.0.0.1:9>"), port: a.udp, timeout: 6) ?? ""
                results.append("burst\(i) \(answer.prefix(11))\n")
            }
            results.append("done\n")
        }
        burst.start()
        _ = waitUntil(10) { results.value.components(separatedBy: "SIP/2.0 200").count > 60 }
        // Down for longer than a commit may wait (3 s): some REGISTERs must get 503 meanwhile.
        pg.stop()
        sleep(4)
        try pg.start()
        _ = waitUntil(120) { results.value.contains("done") }
        let lines = results.value.split(separator: "\n").filter { $0 != "done" }
        let ok = lines.filter { $0.hasSuffix("SIP/2.0 200") }.map { String($0.split(separator: " ")[0]) }
        let refused = lines.filter { $0.hasSuffix("SIP/2.0 503") }.count
        print("burst: \(ok.count) × 200, \(refused) × 503, \(lines.count - ok.count - refused) other")
        #expect(ok.count + refused == lines.count, "only 200 or 503 expected")
        #expect(ok.count > 60)
        #expect(refused >= 1, "the outage was not noticed")

        // Both nodes recover without a restart.
        #expect(waitUntil(20) { register("after", on: a).hasPrefix("SIP/2.0 200") } != nil, "A did not recover: \(a.errors.suffix(3000))")
        #expect(try waitUntil(20) { try lookup(b, "sip:after@example.com").status == 0 } != nil, "B did not recover")
        // Every REGISTER that got a 200 is in the database and on both nodes.
        let stored = Set(try pg.sql("SELECT aor FROM sip_registrar_bindings").split(separator: "\n").map { String($0.split(separator: "@")[0]) })
        let missing = ok.filter { !stored.contains($0) }
        #expect(missing.isEmpty, "lost after a 200: \(missing.prefix(10))")
        let all = try http("GET", b.adminURL + "/v1/bindings?limit=1000").body
        let missingOnB = ok.filter { !all.contains("\"aor\":\"\($0)@example.com\"") }
        #expect(missingOnB.isEmpty, "B lacks: \(missingOnB.prefix(10))")
    }

    @Test func unreachableDatabaseMeans503AndLocalLookupsThenRecovery() throws {
        let pg = try PostgresServer()
        defer { pg.destroy() }
        let a = try node(pg, name: "node-a")
        defer { a.stop() }
        #expect(register("erin", on: a).hasPrefix("SIP/2.0 200 OK"))
        pg.stop()
        let started = Date()
        let answer = register("frank", on: a)
        #expect(answer.hasPrefix("SIP/2.0 503 Location Store Unavailable"), "\(answer)")
        #expect(answer.contains("Retry-After: "))
        #expect(Date().timeIntervalSince(started) < 5.5, "the 503 took too long")
        // Lookups are served from the local index meanwhile.
        #expect(try lookup(a, "sip:erin@example.com").status == 0)
        #expect(try lookup(a, "sip:frank@example.com").status == 1)
        try pg.start()
        #expect(waitUntil(20) { register("frank", on: a).hasPrefix("SIP/2.0 200") } != nil, "no recovery without a restart")
        let metrics = try http("GET", a.adminURL + "/metrics").body
        #expect(metrics.contains("sip_store_outages_total"))
        #expect(a.waitForLog("PostgreSQL unreachable") && a.waitForLog("PostgreSQL reachable again"), "\(a.errors)")
    }

    @Test func startUpProblemsNameTheStore() throws {
        let port = freeLoopbackPort()
        let r = try run(ServerProcess.binary, ["serve", "--udp", "127.0.0.1:0", "--admin", "off",
                                               "--store", "postgres://registrar@127.0.0.1:\(port)/sipreg?sslmode=disable"],
                        timeout: 40, cwd: NSTemporaryDirectory(), env: ["SIP_REGISTRAR_STORE_PASSWORD": "x"])
        #expect(r.status == 2)
        #expect(r.err.hasPrefix("sip-registrar: store postgres://registrar@127.0.0.1:\(port)/sipreg?sslmode=disable: cannot use the database"),
                "\(r.err)")
        #expect(!r.err.contains("\n") || r.err.split(separator: "\n").count == 1)
        let bad = try run(ServerProcess.binary, ["serve", "--udp", "127.0.0.1:0", "--admin", "off", "--store", "postgres://host-without-db"],
                          cwd: NSTemporaryDirectory())
        #expect(bad.status == 2 && bad.err.contains("not a PostgreSQL URL"), "\(bad.err)")
    }
}

/// What one commit does when a batch touches a contact more than once.
@Suite struct CommitPlanTests {
    func binding(_ uri: String, expiresAt: Int64) -> Binding {
        Binding(aor: "a@example.com", uri: uri, scheme: .sip, expiresAt: expiresAt, updatedAt: 0, callID: "c", cseq: 1,
                transport: .udp, sourceHost: "192.0.2.1", sourcePort: 5060)
    }

    @Test func theLastChangeToAContactWins() {
        let plan = CommitPlan([
            .upsert(binding("sip:1", expiresAt: 10)), .upsert(binding("sip:1", expiresAt: 20)),   // refreshed twice
            .upsert(binding("sip:2", expiresAt: 10)), .remove(aor: "a@example.com", uri: "sip:2"), // then removed
            .remove(aor: "a@example.com", uri: "sip:3"), .upsert(binding("sip:3", expiresAt: 30)), // removed, then back
            .expired(aor: "a@example.com", uri: "sip:1", at: 15),                                  // refreshed past it
            .expired(aor: "a@example.com", uri: "sip:4", at: 5), .expired(aor: "a@example.com", uri: "sip:4", at: 7),
            .upsert(binding("sip:5", expiresAt: 10)), .expired(aor: "a@example.com", uri: "sip:5", at: 10),
        ])
        #expect(plan.upserts.map(\.uri) == ["sip:1", "sip:3"])
        #expect(plan.upserts.first?.expiresAt == 20)
        #expect(plan.removals.map(\.uri) == ["sip:2", "sip:5"])
        #expect(plan.expiries.map(\.uri) == ["sip:4"] && plan.expiries.first?.at == 7)
        #expect(plan.aors == ["a@example.com"])
    }
}
