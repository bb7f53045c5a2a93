import Foundation
import SIPTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The built `sip-registrar` executable, run as a user would.
final class ServerProcess: @unchecked Sendable {
    // Safety: the ports and `tokenFile` are set while starting, before the instance is shared;
    // the child's output is collected under its own locks.
    static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sip-registrar").path
    }

    let child: ChildProcess
    let dataDir: String

    var udp = 0, tcp = 0, tls = 0, admin = 0, ws = 0, wss = 0

    init(_ args: [String], env: [String: String] = [:], dataDir: String? = nil, cwd: String? = nil) throws {
        self.dataDir = dataDir ?? NSTemporaryDirectory() + "sipreg-\(UUID().uuidString)"
        child = try ChildProcess(Self.binary, args, env: env, cwd: cwd, mergingErrors: false)
    }

    /// Starts a server on free ports with a store in a fresh folder and waits until it announces its admin URL.
    /// The admin token goes to `DIR/admin.token` (next to the SQLite store; for other stores through the environment).
    static func start(_ extra: [String] = [], store: String? = nil, env: [String: String] = [:], dataDir: String? = nil) throws -> ServerProcess {
        let dir = dataDir ?? NSTemporaryDirectory() + "sipreg-\(UUID().uuidString)"
        var args = ["serve", "--udp", "127.0.0.1:0", "--tcp", "127.0.0.1:0", "--tls", "127.0.0.1:0", "--admin", "127.0.0.1:0",
                    "--store", store ?? "sqlite:\(dir)/registrar.sqlite", "--log-level", "warning"]
        args += extra
        var environment = env
        if environment["SIP_REGISTRAR_ADMIN_TOKEN_FILE"] == nil { environment["SIP_REGISTRAR_ADMIN_TOKEN_FILE"] = dir + "/admin.token" }
        let s = try ServerProcess(args, env: environment, dataDir: dir, cwd: NSTemporaryDirectory())
        s.tokenFile = environment["SIP_REGISTRAR_ADMIN_TOKEN_FILE"]
        try s.waitForStart()
        return s
    }

    /// Where the server keeps its admin token (when known to the test).
    var tokenFile: String?
    /// The admin token, read from ``tokenFile``.
    var token: String? {
        guard let tokenFile, let text = try? String(contentsOfFile: tokenFile, encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first.map(String.init)
    }

    var output: String { child.output }
    var errors: String { child.errors }

    /// Waits (bounded) until standard error holds `needle`: log lines are written by a
    /// background queue in batches, a few milliseconds after the event.
    func waitForLog(_ needle: String, timeout: TimeInterval = 5) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if errors.contains(needle) { return true }
            usleep(10_000)
        }
        return errors.contains(needle)
    }

    func waitForStart(timeout: TimeInterval = 20) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let out = output
            if out.contains("admin http://") {
                for line in out.split(separator: "\n") {
                    let port = Int(line.split(separator: ":").last ?? "") ?? 0
                    if line.hasPrefix("listening udp") { udp = port }
                    if line.hasPrefix("listening tcp") { tcp = port }
                    if line.hasPrefix("listening tls") { tls = port }
                    if line.hasPrefix("listening ws ") { ws = port }
                    if line.hasPrefix("listening wss") { wss = port }
                    if line.hasPrefix("admin http://") { admin = port }
                }
                if let tokenFile { AdminTokens.shared.set(port: admin, file: tokenFile) }
                return
            }
            if !child.isRunning { throw StartFailure(description: "exited \(child.process.terminationStatus): \(errors)") }
            usleep(20_000)
        }
        throw StartFailure(description: "no admin URL announced: \(output) \(errors)")
    }

    struct StartFailure: Error, CustomStringConvertible { var description: String }

    var adminURL: String { "http://127.0.0.1:\(admin)" }

    func signal(_ sig: Int32) { child.signal(sig) }

    /// Waits for exit; returns the status (SIGKILL after `timeout`).
    @discardableResult
    func wait(timeout: TimeInterval = 15) -> Int32 { child.wait(timeout: timeout) }

    func stop() {
        signal(SIGTERM)
        wait()
    }
}

/// Plain-socket SIP for tests.
enum SIPClient {
    /// A REGISTER of `user` at example.com from 127.0.0.1:9 (rport), as text.
    static func register(user: String, contact: String, scheme: String = "sip", transport: String = "UDP", callID: String = UUID().uuidString,
                         cseq: Int = 1, expires: Int = 600, extra: [String] = []) -> String {
        var b = RegisterBuilder()
        b.requestURI = "\(scheme):example.com"
        b.to = "<\(scheme):\(user)@example.com>"
        b.fromTag = "t\(cseq)"
        b.transport = transport
        b.sentBy = "127.0.0.1:9"
        b.branch = "z9hG4bK\(UUID().uuidString.prefix(12))"
        b.rport = true
        b.callID = callID
        b.cseq = UInt32(clamping: cseq)
        b.contacts = [contact]
        b.expires = expires
        b.extra = extra
        return b.text()
    }

    /// Sends one UDP datagram and returns the first answer (nil on timeout).
    static func udp(_ text: String, port: Int, timeout: Int = 3) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = loopbackAddress(port: port)
        let bytes = Array(text.utf8)
        _ = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sendto(fd, bytes, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var buf = [UInt8](repeating: 0, count: 65_536)
        let n = recv(fd, &buf, buf.count, 0)
        return n > 0 ? String(decoding: buf[0..<n], as: UTF8.self) : nil
    }

    /// Sends over a new TCP connection and returns the first complete answer.
    static func tcp(_ text: String, port: Int, timeout: Int = 3) -> String? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var tv = timeval(tv_sec: timeout, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var addr = loopbackAddress(port: port)
        let ok = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard ok == 0 else { return nil }
        let bytes = Array(text.utf8)
        _ = send(fd, bytes, bytes.count, 0)
        var got: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            got += buf[0..<n]
            if String(decoding: got, as: UTF8.self).contains("\r\n\r\n") { break }
        }
        return got.isEmpty ? nil : String(decoding: got, as: UTF8.self)
    }

    /// Sends over TLS with openssl s_client and returns its output once a status line arrived.
    static func tls(_ text: String, port: Int, extra: [String] = []) throws -> String {
        try runUntil("/usr/bin/openssl", ["s_client", "-connect", "127.0.0.1:\(port)", "-quiet", "-servername", "localhost"] + extra,
                     input: text, timeout: 8) { $0.contains("SIP/2.0 ") && $0.contains("\r\n\r\n") }
    }
}

func lookup(_ server: ServerProcess, _ aor: String) throws -> (status: Int32, lines: [String]) {
    let r = try run(ServerProcess.binary, ["lookup", aor, "--admin", server.adminURL] + (server.tokenFile.map { ["--token-file", $0] } ?? []))
    return (r.status, r.out.split(separator: "\n").map(String.init))
}

/// The admin token files of the servers the tests started, by admin port, so that `http`
/// sends the right `Authorization` by itself.
final class AdminTokens: @unchecked Sendable {
    // Safety: `files` is only touched under `lock`.
    static let shared = AdminTokens()
    private let lock = NSLock()
    private var files: [Int: String] = [:]
    func set(port: Int, file: String) { lock.lock(); files[port] = file; lock.unlock() }
    func token(forURL url: String) -> String? {
        guard let rest = url.split(separator: "//").dropFirst().first,
              let port = Int(rest.split(separator: "/").first?.split(separator: ":").last ?? "") else { return nil }
        lock.lock()
        let file = files[port]
        lock.unlock()
        guard let file, let text = try? String(contentsOfFile: file, encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first.map(String.init)
    }
}

/// An HTTP request with curl. The admin token of the server at `url` is sent unless `token`
/// says otherwise (`.some(nil)`: no Authorization header); `host` replaces the Host header.
func http(_ method: String, _ url: String, token: String?? = .none, host: String? = nil) throws -> (status: Int, body: String) {
    var args = ["-s", "-X", method, "-w", "\n%{http_code}"]
    let bearer: String? = switch token {
    case .none: AdminTokens.shared.token(forURL: url)
    case .some(let t): t
    }
    if let bearer { args += ["-H", "Authorization: Bearer \(bearer)"] }
    if let host { args += ["-H", "Host: \(host)"] }
    let r = try run("/usr/bin/curl", args + [url])
    let lines = r.out.split(separator: "\n", omittingEmptySubsequences: false)
    return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
}

