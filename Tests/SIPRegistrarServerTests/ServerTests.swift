import Foundation
import SIPTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The built executable, run as a user would.
@Suite(.serialized) struct ServerEndToEndTests {
    @Test func registerOverUDPTCPTLSAndLookUp() throws {
        let s = try ServerProcess.start()
        defer { s.stop() }
        let udp = SIPClient.udp(SIPClient.register(user: "alice", contact: "<sip:alice@127.0.0.1:5070>"), port: s.udp)
        #expect(udp?.hasPrefix("SIP/2.0 200 OK") == true, "\(udp ?? "no answer")")
        let tcp = SIPClient.tcp(SIPClient.register(user: "alice", contact: "<sip:alice@127.0.0.1:5071;transport=tcp>", transport: "TCP"),
                                port: s.tcp)
        #expect(tcp?.hasPrefix("SIP/2.0 200 OK") == true, "\(tcp ?? "no answer")")
        let tls = try SIPClient.tls(SIPClient.register(user: "alice", contact: "<sips:alice@127.0.0.1:5072>", scheme: "sips",
                                                       transport: "TLS"), port: s.tls)
        #expect(tls.contains("SIP/2.0 200 OK"), "\(tls)")

        // Scheme filtering through the CLI...
        let all = try lookup(s, "sip:alice@example.com")
        #expect(all.status == 0)
        #expect(Set(all.lines) == ["sip:alice@127.0.0.1:5070", "sip:alice@127.0.0.1:5071;transport=tcp", "sips:alice@127.0.0.1:5072"])
        let secure = try lookup(s, "sips:alice@example.com")
        #expect(secure.lines == ["sips:alice@127.0.0.1:5072"])
        #expect(try lookup(s, "sip:nobody@example.com").status == 1)
        #expect(try lookup(s, "not-an-address").status == 2)

        // ...and over HTTP.
        let r = try http("GET", "\(s.adminURL)/v1/bindings?aor=sips:alice@example.com")
        #expect(r.status == 200)
        #expect(r.body.contains("\"uri\":\"sips:alice@127.0.0.1:5072\"") && r.body.contains("\"transport\":\"tls\""))
        #expect(!r.body.contains("5070"))
        for field in ["uri", "expires", "q", "transport", "source", "instance", "reg_id", "path", "user_agent", "tls_identity",
                      "updated_at"] {
            #expect(r.body.contains("\"\(field)\":"), "\(field) missing in \(r.body)")
        }
        let bad = try http("GET", "\(s.adminURL)/v1/bindings?aor=mailto:x")
        #expect(bad.status == 400 && bad.body.contains("\"error\""))
        let page = try http("GET", "\(s.adminURL)/v1/bindings?limit=2")
        #expect(page.body.contains("\"total\":3") && page.body.contains("\"limit\":2"))
        #expect(try http("GET", "\(s.adminURL)/v1/bindings?limit=0").status == 400)
        #expect(try http("GET", "\(s.adminURL)/health").body.contains("\"status\":\"ok\""))
        let metrics = try http("GET", "\(s.adminURL)/metrics")
        #expect(metrics.body.contains("sip_requests_total") && metrics.body.contains("sip_bindings 3"))
        let del = try http("DELETE", "\(s.adminURL)/v1/bindings?aor=sip:alice@example.com")
        #expect(del.status == 200 && del.body.contains("\"removed\":\"3\""))
        #expect(try lookup(s, "sip:alice@example.com").status == 1)
    }

    /// A method name is any token a peer likes: counting each under its own name would let
    /// one peer grow the metrics registry without bound.
    @Test func madeUpMethodsAreCountedAsOther() throws {
        let s = try ServerProcess.start()
        defer { s.stop() }
        for n in 0..<5 {
            let request = """
                XMADEUP\(n) sip:carol@example.com SIP/2.0\r
                Via: SIP/2.0/UDP 127.0.0.1:9;branch=z9hG4bK-madeup-\(n);rport\r
                Max-Forwards: 70\r
                From: <sip:dave@example.com>;tag=m\(n)\r
                To: <sip:carol@example.com>\r
                Call-ID: madeup-\(n)@test\r
                CSeq: 1 XMADEUP\(n)\r
                Content-Length: 0\r
                \r

                """
            #expect(SIPClient.udp(request, port: s.udp) != nil, "request \(n) got no answer")
        }
        let metrics = try http("GET", "\(s.adminURL)/metrics")
        #expect(metrics.body.contains("method=\"other\""), "\(metrics.body)")
        #expect(!metrics.body.contains("XMADEUP"))
    }

    @Test func sipsOverUDPIsRefused() throws {
        let s = try ServerProcess.start()
        defer { s.stop() }
        let r = SIPClient.udp(SIPClient.register(user: "bob", contact: "<sips:bob@127.0.0.1:5072>", scheme: "sips"), port: s.udp)
        #expect(r?.hasPrefix("SIP/2.0 403 SIPS Requires TLS") == true)
    }

    @Test func restartKeepsBindingsAndSIGTERMExitsZero() throws {
        let dir = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString)"
        let first = try ServerProcess.start(dataDir: dir)
        #expect(SIPClient.udp(SIPClient.register(user: "carol", contact: "<sip:carol@127.0.0.1:5080>"), port: first.udp)?
            .hasPrefix("SIP/2.0 200") == true)
        first.signal(SIGTERM)
        #expect(first.wait() == 0)
        let second = try ServerProcess.start(dataDir: dir)
        defer { second.stop() }
        #expect(try lookup(second, "sip:carol@example.com").lines == ["sip:carol@127.0.0.1:5080"])
    }

    @Test func killDuringABurstLosesNothingThatGotA200() throws {
        let dir = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString)"
        let s = try ServerProcess.start(dataDir: dir)
        let confirmed = LockedText()
        let stopped = LockedText()
        let group = DispatchGroup()
        for worker in 0..<4 {
            group.enter()
            let port = s.udp
            Thread.detachNewThread {
                for i in 0..<3000 where stopped.value.isEmpty {
                    let user = "burst\(worker)x\(i)"
                    if let r = SIPClient.udp(SIPClient.register(user: user, contact: "<sip:\(user)@127.0.0.1:6000>"), port: port, timeout: 1),
                       r.hasPrefix("SIP/2.0 200") {
                        confirmed.append(user + "\n")
                    }
                }
                group.leave()
            }
        }
        usleep(400_000)
        s.signal(SIGKILL)
        stopped.append("stop")
        group.wait()
        s.wait()
        let users = confirmed.value.split(separator: "\n").map(String.init)
        #expect(users.count > 0 && users.count < 12_000, "the kill came during the burst")
        let again = try ServerProcess.start(dataDir: dir)
        defer { again.stop() }
        var all = (status: 0, body: "")
        var offset = 0
        while true {
            let page = try http("GET", "\(again.adminURL)/v1/bindings?limit=1000&offset=\(offset)")
            all.status = page.status
            all.body += page.body
            guard page.status == 200, page.body.contains("\"aor\"") else { break }
            offset += 1000
        }
        #expect(all.status == 200)
        for u in users {
            #expect(all.body.contains("\"aor\":\"\(u)@example.com\""), "\(u) got a 200 but is gone")
        }
    }

    @Test func sighupReloadChangesTheCertificateForNewConnections() throws {
        let dir = NSTemporaryDirectory() + "sipreg-certs-\(UUID().uuidString)"
        #expect(try TestCertificates.script(out: dir + "/a").status == 0)
        #expect(try TestCertificates.script(out: dir + "/b").status == 0)
        let live = dir + "/live"
        mkdir(live, 0o755)
        func install(_ from: String) throws {
            for f in ["server.pem", "server.key"] {
                _ = try? FileManager.default.removeItem(atPath: "\(live)/\(f)")
                try FileManager.default.copyItem(atPath: "\(dir)/\(from)/\(f)", toPath: "\(live)/\(f)")
            }
        }
        try install("a")
        let s = try ServerProcess.start(["--cert", "\(live)/server.pem", "--key", "\(live)/server.key"])
        defer { s.stop() }
        func fingerprint() throws -> String {
            let r = try run("/bin/bash", ["-c", "openssl s_client -connect 127.0.0.1:\(s.tls) -servername localhost </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -sha256"])
            return r.out
        }
        let before = try fingerprint()
        try install("b")
        s.signal(SIGHUP)
        var after = before
        for _ in 0..<50 where after == before {
            usleep(100_000)
            after = try fingerprint()
        }
        #expect(before.contains("Fingerprint") && after.contains("Fingerprint") && before != after)
    }

    @Test func netSIPClientRegistersOverUDPTCPAndTLS() throws {
        let s = try ServerProcess.start()
        defer { s.stop() }
        let script = PackageRoot.path("Tests/SIPRegistrarServerTests/netsip/register.pl")
        for (proto, port) in [("udp", s.udp), ("tcp", s.tcp), ("tls", s.tls)] {
            let r = try run("/usr/bin/perl", [script, proto, "127.0.0.1", String(port), "perl\(proto)"], timeout: 20)
            #expect(r.out.hasPrefix("registered"), "\(proto): \(r.out) \(r.err)")
            #expect(try lookup(s, "sip:perl\(proto)@example.com").status == 0, "\(proto)")
        }
    }
}

/// Bad input: exit status 2 and one line naming the flag, key, or file and line.
@Suite(.serialized) struct ServerBadInputTests {
    func fails(_ args: [String], env: [String: String] = [:], cwd: String? = nil) throws -> String {
        let r = try run(ServerProcess.binary, args, timeout: 20, cwd: cwd ?? NSTemporaryDirectory(), env: env)
        #expect(r.status == 2, "exit \(r.status) for \(args): \(r.err)")
        let lines = r.err.split(separator: "\n")
        #expect(lines.count == 1, "\(r.err)")
        return String(lines.first ?? "")
    }

    func writeConfig(_ text: String) -> String {
        let path = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString).yaml"
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        return path
    }

    let quiet = ["--udp", "127.0.0.1:0", "--admin", "off", "--store", "memory"]

    @Test func unknownKeyNamesFileAndLine() throws {
        let path = writeConfig("registrar:\n  min_expires: 60\n  max_expirez: 100\n")
        #expect(try fails(["serve", "--config", path] + quiet) == "sip-registrar: \(path):3: unknown key 'registrar.max_expirez'")
    }

    @Test func badValuesInTheFile() throws {
        let path = writeConfig("listen:\n  udp: [\"nonsense\"]\n")
        #expect(try fails(["serve", "--config", path, "--admin", "off", "--store", "memory"])
                == "sip-registrar: \(path):2: listen.udp: bad address 'nonsense' (expected HOST:PORT)")
        let yaml = writeConfig("registrar: [unclosed\n")
        #expect(try fails(["serve", "--config", yaml] + quiet).hasPrefix("sip-registrar: \(yaml):"))
    }

    @Test func badFlags() throws {
        #expect(try fails(["serve", "--udp", "999.1:x", "--admin", "off"]) == "sip-registrar: --udp: bad address '999.1:x' (expected HOST:PORT)")
        #expect(try fails(["serve", "--min-expires", "500", "--max-expires", "100"] + quiet)
                == "sip-registrar: min-expires (500) is greater than max-expires (100)")
        #expect(try fails(["serve", "--bogus"]).contains("--bogus"))
        #expect(try fails(["serve", "--store", "redis:x", "--admin", "off"]).contains("--store must be memory, sqlite:PATH"))
        #expect(try fails(["serve", "--config", "/no/such.yaml"]) == "sip-registrar: --config /no/such.yaml: no such file")
    }

    @Test func environmentIsNamed() throws {
        #expect(try fails(["serve"] + quiet, env: ["SIP_REGISTRAR_MIN_EXPIRES": "soon"])
                == "sip-registrar: environment SIP_REGISTRAR_MIN_EXPIRES='soon' is not a number")
    }

    @Test func certificateProblems() throws {
        let args = ["serve", "--udp", "127.0.0.1:0", "--tls", "127.0.0.1:0", "--admin", "off", "--store", "memory"]
        #expect(try fails(args + ["--cert", "/no/cert.pem", "--key", "/no/key.pem"])
                == "sip-registrar: tls: certificate file /no/cert.pem: No such file or directory")
        let dir = NSTemporaryDirectory() + "sipreg-c-\(UUID().uuidString)"
        _ = try TestCertificates.script(out: dir, clients: ["alice"])
        let mismatch = try fails(args + ["--cert", dir + "/server.pem", "--key", dir + "/alice.key"])
        #expect(mismatch.hasPrefix("sip-registrar: tls: private key \(dir)/alice.key does not match certificate \(dir)/server.pem"))
        #expect(try fails(args + ["--cert", dir + "/server.pem"]) == "sip-registrar: --cert needs --key")
    }

    @Test func unusableStore() throws {
        let corrupt = NSTemporaryDirectory() + "sipreg-corrupt-\(UUID().uuidString).sqlite"
        _ = FileManager.default.createFile(atPath: corrupt, contents: Data(repeating: 0x5A, count: 8192))
        let line = try fails(["serve", "--udp", "127.0.0.1:0", "--admin", "off", "--store", "sqlite:\(corrupt)"])
        #expect(line.hasPrefix("sip-registrar: store sqlite:\(corrupt): "), "\(line)")
        #expect(line.contains("not a database"), "\(line)")
        let unwritable = "/proc/sip-registrar-test/registrar.sqlite"
        let l2 = try fails(["serve", "--udp", "127.0.0.1:0", "--admin", "off", "--store", "sqlite:\(unwritable)"])
        #expect(l2.hasPrefix("sip-registrar: store sqlite:\(unwritable): "), "\(l2)")
    }

    @Test func portInUse() throws {
        let s = try ServerProcess.start()
        defer { s.stop() }
        #expect(try fails(["serve", "--tcp", "127.0.0.1:\(s.tcp)", "--admin", "off", "--store", "memory"])
                == "sip-registrar: --tcp 127.0.0.1:\(s.tcp): address already in use")
    }

    @Test func helpAndVersion() throws {
        let v = try run(ServerProcess.binary, ["--version"])
        #expect(v.status == 0 && v.out.contains("0.1.0"))
        let h = try run(ServerProcess.binary, ["--help"])
        #expect(h.status == 0 && h.out.contains("serve") && h.out.contains("lookup"))
    }
}

/// Flags > environment > config file > defaults.
@Suite(.serialized) struct ServerPrecedenceTests {
    func minExpires(_ s: ServerProcess) -> String? {
        // 1 second is below any configured minimum: the 423 says which minimum is in force.
        let r = SIPClient.udp(SIPClient.register(user: "p", contact: "<sip:p@127.0.0.1:7000>", expires: 1), port: s.udp)
        return r?.split(separator: "\r\n").first { $0.hasPrefix("Min-Expires:") }.map(String.init)
    }

    @Test func precedence() throws {
        let path = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString).yaml"
        _ = FileManager.default.createFile(atPath: path, contents: Data("registrar:\n  min_expires: 100\n".utf8))
        let fileOnly = try ServerProcess.start(["--config", path], store: "memory")
        #expect(minExpires(fileOnly) == "Min-Expires: 100")
        fileOnly.stop()
        let env = try ServerProcess.start(["--config", path], store: "memory", env: ["SIP_REGISTRAR_MIN_EXPIRES": "200"])
        #expect(minExpires(env) == "Min-Expires: 200")
        env.stop()
        let flag = try ServerProcess.start(["--config", path, "--min-expires", "300"], store: "memory",
                                           env: ["SIP_REGISTRAR_MIN_EXPIRES": "200"])
        #expect(minExpires(flag) == "Min-Expires: 300")
        flag.stop()
        let defaults = try ServerProcess.start([], store: "memory")
        #expect(minExpires(defaults) == "Min-Expires: 60")
        defaults.stop()
    }
}
