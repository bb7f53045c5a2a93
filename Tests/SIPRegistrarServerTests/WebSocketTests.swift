import Foundation
import SIPTestSupport
import Testing

/// SIP over WebSocket (RFC 7118) with a real WebSocket client (Python `websockets`, Debian's
/// python3-websockets): registration over WS and WSS, the handshake and framing edge cases,
/// the Origin allow-list, and a call from a WSS client to a TLS client through the proxy.
@Suite(.serialized) struct WebSocketTests {
    static let script = PackageRoot.path("Tests/SIPRegistrarServerTests/websocket/ws.py")
    static let haveClient = run0("/usr/bin/python3", ["-c", "import websockets"])

    static func run0(_ exe: String, _ args: [String]) -> Bool {
        (try? run(exe, args, timeout: 10).status) == 0
    }

    func play(_ scenario: String, _ extra: [String] = [], password: String? = nil) throws {
        let s = try ServerProcess.start(["--ws", "127.0.0.1:0", "--wss", "127.0.0.1:0", "--domain", "example.com"] + extra)
        defer { s.stop() }
        #expect(s.ws != 0 && s.wss != 0, "\(s.output)")
        let r = try run("/usr/bin/python3", [Self.script, scenario, String(s.ws), String(s.wss), String(s.tls)] + (password.map { [$0] } ?? []),
                        timeout: 60)
        #expect(r.status == 0 && r.out.hasSuffix("OK\n"), "\(scenario): \(r.out)\(r.err)\nserver: \(s.errors.suffix(2000))")
    }

    @Test(.enabled(if: haveClient, "python3-websockets is not installed")) func registerOverWSAndWSS() throws {
        try play("register")
    }

    @Test(.enabled(if: haveClient, "python3-websockets is not installed")) func handshakeAndFramingEdgeCases() throws {
        try play("edges")
    }

    /// Authentication is the same as over TLS: digest (browsers cannot present client certificates).
    @Test(.enabled(if: haveClient, "python3-websockets is not installed")) func digestOverWSS() throws {
        let users = NSTemporaryDirectory() + "sipreg-users-\(UUID().uuidString)"
        let r = try run(ServerProcess.binary, ["passwd", "--users", users, "alice@example.com"], input: "wonderland\n")
        #expect(r.status == 0, "\(r.err)")
        try play("digest", ["--users", users], password: "wonderland")
    }

    @Test(.enabled(if: haveClient, "python3-websockets is not installed")) func originAllowList() throws {
        let config = NSTemporaryDirectory() + "sipreg-ws-\(UUID().uuidString).yaml"
        try "listen:\n  ws_origins: [\"https://phone.example.com\"]\n".write(toFile: config, atomically: true, encoding: .utf8)
        try play("origin", ["--config", config])
    }

    @Test(.enabled(if: haveClient, "python3-websockets is not installed")) func callFromWSSToTLSAndBack() throws {
        try play("call")
    }

    static let haveChromium = FileManager.default.isExecutableFile(atPath: "/usr/bin/chromium")

    /// A real browser: headless Chromium loads a page that opens wss:// with the subprotocol
    /// sip, registers, then calls a TLS client; the page's title (read over DevTools) shows each 200.
    @Test(.enabled(if: haveClient && haveChromium, "chromium or python3-websockets is not installed"))
    func chromiumRegistersAndCallsOverWSS() throws {
        let s = try ServerProcess.start(["--wss", "127.0.0.1:0", "--domain", "example.com"])
        defer { s.stop() }
        let browser = PackageRoot.path("Tests/SIPRegistrarServerTests/websocket/browser.py")
        let r = try run("/usr/bin/python3", [browser, String(s.wss), String(s.tls)], timeout: 90)
        #expect(r.status == 0 && r.out.hasSuffix("OK\n"), "\(r.out)\(r.err)\nserver: \(s.errors.suffix(2000))")
    }
}
