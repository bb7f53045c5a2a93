import Foundation
@testable import SIPRegistrarServer
import SIPLocationStores
import SIPRegistrar
import SIPTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The admin API's token and Host check, through the real server, curl and `sip-registrar lookup`.
@Suite(.serialized) struct AdminAccessTests {

    @Test func everyV1RouteAndMetricsNeedTheTokenHealthDoesNot() throws {
        let s = try ServerProcess.start()
        defer { s.stop() }
        let token = try #require(s.token)
        let aor = "\(s.adminURL)/v1/bindings?aor=sip:alice@example.com"
        for (method, url) in [("GET", aor), ("GET", "\(s.adminURL)/v1/bindings?limit=5"), ("DELETE", aor), ("GET", "\(s.adminURL)/metrics")] {
            let none = try http(method, url, token: .some(nil))
            #expect(none.status == 401 && none.body.contains("\"error\":\"missing access token"), "\(method) \(url): \(none)")
            let wrong = try http(method, url, token: String(repeating: "0", count: 64))
            #expect(wrong.status == 401 && wrong.body.contains("\"error\":\"wrong access token"), "\(method) \(url): \(wrong)")
            let right = try http(method, url, token: token)
            #expect(right.status == 200, "\(method) \(url): \(right)")
        }
        #expect(try http("GET", "\(s.adminURL)/health", token: .some(nil)).status == 200)
    }

    @Test func aHostThatIsNotThisServerIsRefused() throws {
        let s = try ServerProcess.start()
        defer { s.stop() }
        let url = "\(s.adminURL)/v1/bindings?aor=sip:alice@example.com"
        for host in ["evil.example.com", "evil.example.com:\(s.admin)", "127.0.0.1.nip.io", "localhost.evil.example"] {
            let r = try http("GET", url, host: host)
            #expect(r.status == 421 && r.body.contains("\"error\":\"Host"), "\(host): \(r)")
            #expect(try http("GET", "\(s.adminURL)/health", host: host).status == 421, "\(host)")
        }
        for host in ["127.0.0.1:\(s.admin)", "localhost:\(s.admin)", "LOCALHOST", "[::1]:\(s.admin)", "10.1.2.3"] {
            #expect(try http("GET", url, host: host).status == 200, "\(host)")
        }
    }

    @Test func hostCheckRules() {
        let names: Set<String> = ["localhost", "admin.internal"]
        for ok in ["127.0.0.1", "127.0.0.1:8060", "[::1]:8060", "[::1]", "localhost", "localhost.", "Admin.Internal:80", "192.0.2.1:1"] {
            #expect(AdminAPI.hostAllowed(ok, names: names), "\(ok)")
        }
        for bad in [nil, "", "evil.com", "evil.com:8060", "127.0.0.1.evil.com", "[::1", "[evil]:80", "localhost:x", "[::1]x", "cafe.de"] {
            #expect(!AdminAPI.hostAllowed(bad, names: names), "\(bad ?? "nil")")
        }
        #expect(AdminAPI.tokenMatches("abc123abc123abc1", "abc123abc123abc1"))
        #expect(!AdminAPI.tokenMatches("abc123abc123abc", "abc123abc123abc1"))
        #expect(!AdminAPI.tokenMatches("abc123abc123abc1x", "abc123abc123abc1"))
    }

    /// The default: the token lives next to the SQLite store, mode 600, and `lookup` run in the
    /// same place finds it with no option at all.
    @Test func tokenFileNextToTheStoreMode600AndLookupFindsIt() throws {
        let dir = NSTemporaryDirectory() + "sipreg-cwd-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let args = ["serve", "--udp", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--store", "sqlite:data/registrar.sqlite",
                    "--log-level", "notice"]
        let s = try ServerProcess(args, dataDir: dir, cwd: dir)
        let tokenFile = dir + "/data/admin.token"
        s.tokenFile = tokenFile
        try s.waitForStart()
        var stopped = false
        defer { if !stopped { s.stop() } }
        let attributes = try FileManager.default.attributesOfItem(atPath: tokenFile)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        let token = try #require(s.token)
        #expect(token.count == 64 && token.allSatisfy(\.isHexDigit))
        #expect(s.waitForLog("admin API token created"), "\(s.errors)")

        let reply = SIPClient.udp(SIPClient.register(user: "tina", contact: "<sip:tina@127.0.0.1:5090>"), port: s.udp)
        #expect(reply?.hasPrefix("SIP/2.0 200 OK") == true)
        let found = try run(ServerProcess.binary, ["lookup", "sip:tina@example.com", "--admin", s.adminURL], cwd: dir)
        #expect(found.status == 0 && found.out == "sip:tina@127.0.0.1:5090\n", "\(found)")
        let explicit = try run(ServerProcess.binary, ["lookup", "sip:tina@example.com", "--admin", s.adminURL, "--token-file", tokenFile])
        #expect(explicit.status == 0, "\(explicit)")
        // Elsewhere there is no token: refused, and the message says where the token is.
        let elsewhere = try run(ServerProcess.binary, ["lookup", "sip:tina@example.com", "--admin", s.adminURL], cwd: NSTemporaryDirectory())
        #expect(elsewhere.status == 2 && elsewhere.err.contains("missing access token") && elsewhere.err.contains("admin_token_file data/admin.token"), "\(elsewhere)")
        let bad = try run(ServerProcess.binary, ["lookup", "sip:tina@example.com", "--admin", s.adminURL, "--token-file", dir + "/nope"])
        #expect(bad.status == 2 && bad.err.contains("admin_token_file \(dir)/nope"), "\(bad)")

        // A restart keeps the token.
        s.stop()
        stopped = true
        let again = try ServerProcess(args, dataDir: dir, cwd: dir)
        again.tokenFile = tokenFile
        try again.waitForStart()
        defer { again.stop() }
        #expect(again.token == token)
        // Nothing to wait for: give the log writer its batch interval several times over.
        usleep(300_000)
        #expect(!again.errors.contains("admin API token created"))
    }

    @Test func aTokenFileOthersCanReadIsRefusedAtStartUp() throws {
        let dir = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let file = dir + "/token"
        try "0123456789abcdef0123456789abcdef\n".write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        let r = try run(ServerProcess.binary, ["serve", "--udp", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--store", "memory"],
                        env: ["SIP_REGISTRAR_ADMIN_TOKEN_FILE": file])
        #expect(r.status == 2 && r.err == "sip-registrar: admin_token_file \(file): mode 644 lets others read the token; chmod 600 it\n",
                "\(r.err)")
        // Made by hand, mode 600: used as it is.
        chmod(file, 0o600)
        let s = try ServerProcess.start(store: "memory", env: ["SIP_REGISTRAR_ADMIN_TOKEN_FILE": file])
        defer { s.stop() }
        #expect(try http("GET", "\(s.adminURL)/v1/bindings?limit=1", token: "0123456789abcdef0123456789abcdef").status == 200)
    }

    @Test func tokenPathDefaults() throws {
        var c = ServerConfiguration.defaults
        #expect(c.resolvedAdminTokenFile == "data/admin.token")
        c.store = .sqlite(path: "/var/lib/sip-registrar/registrar.sqlite")
        #expect(c.resolvedAdminTokenFile == "/var/lib/sip-registrar/admin.token")
        c.store = .sqlite(path: "registrar.sqlite")
        #expect(c.resolvedAdminTokenFile == "admin.token")
        c.store = .memory
        #expect(c.resolvedAdminTokenFile == "data/admin.token")
        c.adminTokenFile = "/etc/sip-registrar/admin.token"
        #expect(c.resolvedAdminTokenFile == "/etc/sip-registrar/admin.token")
        let config = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString).yaml"
        try "admin_token_file: /run/t\nstore_sync: normal\n".write(toFile: config, atomically: true, encoding: .utf8)
        let loaded = try ConfigurationLoader.load(file: config, environment: [:], overrides: ConfigurationOverrides())
        #expect(loaded.adminTokenFile == "/run/t" && loaded.storeSync == .normal)
        let env = try ConfigurationLoader.load(file: config, environment: ["SIP_REGISTRAR_ADMIN_TOKEN_FILE": "/x",
                                                                           "SIP_REGISTRAR_STORE_SYNC": "full"], overrides: ConfigurationOverrides())
        #expect(env.adminTokenFile == "/x" && env.storeSync == .full)
    }

    @Test func clientOnlyWithTheOptionalCertificateOfAnotherCAStillRegistersUnverified() throws {
        let dir = NSTemporaryDirectory() + "sipreg-pki-\(UUID().uuidString)"
        let other = NSTemporaryDirectory() + "sipreg-pki-other-\(UUID().uuidString)"
        #expect(try TestCertificates.script(out: dir).status == 0)
        #expect(try TestCertificates.script(out: other, clients: ["alice"], extra: ["--domain", "other.example"]).status == 0)
        let s = try ServerProcess.start(["--cert", dir + "/server.pem", "--key", dir + "/server.key", "--ca", dir + "/ca.pem",
                                         "--client-certs", "optional", "--log-level", "notice"])
        defer { s.stop() }
        let register = SIPClient.register(user: "alice", contact: "<sips:alice@127.0.0.1:5072>", scheme: "sips", transport: "TLS")
        let answer = try SIPClient.tls(register, port: s.tls, extra: ["-cert", other + "/alice.pem", "-key", other + "/alice.key"])
        #expect(answer.contains("SIP/2.0 200 OK"), "\(answer)")
        let shown = try http("GET", s.adminURL + "/v1/bindings?aor=sips:alice@example.com").body
        #expect(shown.contains("\"tls_identity\":null"), "no identity from an unverified certificate: \(shown)")
        let metrics = try http("GET", s.adminURL + "/metrics").body
        #expect(metrics.contains("sip_tls_client_certificates_total{result=\"unverified\"} 1"), "\(metrics)")
        #expect(s.waitForLog("TLS client certificate did not verify"), "\(s.errors)")
    }
}

/// Smaller pieces: durability settings, the users file's temporary file, PostgreSQL URLs, log escaping.
@Suite struct ServerHardeningTests {
    @Test func sqliteIsFullySynchronousUnlessToldOtherwise() throws {
        let dir = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString)"
        let full = try SQLiteBindingStore(path: dir + "/full.sqlite")
        #expect(try full.currentSynchronousSetting() == 2)
        let normal = try SQLiteBindingStore(path: dir + "/normal.sqlite", synchronous: .normal)
        #expect(try normal.currentSynchronousSetting() == 1)
        #expect(ServerConfiguration.defaults.storeSync == .full)
    }

    @Test func storeSyncIsValidatedAndTheErrorNamesTheKey() throws {
        let config = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString).yaml"
        try "store_sync: sometimes\n".write(toFile: config, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError("\(config):1: store_sync must be full or normal (got 'sometimes')")) {
            try ConfigurationLoader.load(file: config, environment: [:], overrides: ConfigurationOverrides())
        }
        #expect(throws: ConfigurationError("environment SIP_REGISTRAR_STORE_SYNC must be full or normal (got 'off')")) {
            try ConfigurationLoader.load(file: nil, environment: ["SIP_REGISTRAR_STORE_SYNC": "off"], overrides: ConfigurationOverrides())
        }
    }

    @Test func usersFileIsWrittenThroughAFreshTemporaryFileNeverAPlantedOne() throws {
        let dir = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let victim = dir + "/victim"
        try "precious\n".write(toFile: victim, atomically: true, encoding: .utf8)
        let users = dir + "/users"
        // Someone plants a link where a predictable temporary name would be.
        #expect(symlink(victim, users + ".tmp.\(getpid())") == 0)
        try UsersFile.setPassword(path: users, address: "alice@example.com", password: "wonderland", aliases: nil)
        #expect(try String(contentsOfFile: victim, encoding: .utf8) == "precious\n", "the link was followed")
        let table = try UsersFile.load(users)
        #expect(table.count == 1)
        let attributes = try FileManager.default.attributesOfItem(atPath: users)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect((attributes[.type] as? FileAttributeType) == .typeRegular)
        // Nothing is left behind but the planted link.
        let left = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("users.tmp") }
        #expect(left == ["users.tmp.\(getpid())"])
    }

    @Test func postgresToAnotherHostWithoutSSLModeWarns() throws {
        func warns(_ url: String) throws -> Bool { try #require(PostgresLocation(url: url)).unencryptedToAnotherHost }
        #expect(try warns("postgres://registrar@db.example.org:5432/sipreg"))
        #expect(try warns("postgres://registrar@192.0.2.7/sipreg"))
        #expect(try warns("postgres://registrar@[2001:db8::7]:5432/sipreg"))
        #expect(try !warns("postgres://registrar@db.example.org:5432/sipreg?sslmode=require"))
        #expect(try !warns("postgres://registrar@db.example.org:5432/sipreg?sslmode=disable"))
        #expect(try !warns("postgres://registrar@127.0.0.1:5432/sipreg"))
        #expect(try !warns("postgres://registrar@localhost/sipreg"))
        #expect(try !warns("postgres://registrar@[::1]:5432/sipreg"))
        #expect(try #require(PostgresLocation(url: "postgres://r@db.example.org/x")).sslMode == "prefer")
    }

    @Test func logSafeEscapesControlCharacters() {
        #expect("sip:alice@example.com".logSafe == "sip:alice@example.com")
        #expect("Linphone/5.1 (Ubuntu) ü".logSafe == "Linphone/5.1 (Ubuntu) ü")
        #expect("alice\nINFO forged line".logSafe == "alice\\nINFO forged line")
        #expect("a\r\tb".logSafe == "a\\r\\tb")
        #expect("x\u{1b}[2Jy".logSafe == "x\\u{1B}[2Jy")
        #expect("nul\u{0}".logSafe == "nul\\u{0}")
        #expect("del\u{7f}c1\u{85}".logSafe == "del\\u{7F}c1\\u{85}")
        #expect("rtl\u{202e}txt\u{2028}".logSafe == "rtl\\u{202E}txt\\u{2028}")
        #expect("back\\slash".logSafe == "back\\\\slash")
        #expect((nil as String?).logSafe == "-")
        // A percent-decoded AOR, as the registrar stores it.
        let aor = "sip:" + "al%0Aice%1B@example.com".removingPercentEncoding!
        #expect(!aor.logSafe.contains("\n") && !aor.logSafe.contains("\u{1b}"))
    }
}
