import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The built `sip-registrar` executable, run as a user would.
final class ServerProcess: @unchecked Sendable {
    // Safety: the mutable output buffer is only touched under `lock`.
    static var binary: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sip-registrar").path
    }

    let process = Process()
    private let lock = NSLock()
    private var stdoutText = ""
    private var stderrText = ""
    let dataDir: String

    var udp = 0, tcp = 0, tls = 0, admin = 0, ws = 0, wss = 0

    init(_ args: [String], env: [String: String] = [:], dataDir: String? = nil, cwd: String? = nil) throws {
        self.dataDir = dataDir ?? NSTemporaryDirectory() + "sipreg-\(UUID().uuidString)"
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = args
        var environment = ProcessInfo.processInfo.environment
        for (k, v) in env { environment[k] = v }
        process.environment = environment
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        out.fileHandleForReading.readabilityHandler = { [weak self] h in
            let s = String(decoding: h.availableData, as: UTF8.self)
            guard let self else { return }
            self.lock.lock()
            self.stdoutText += s
            self.lock.unlock()
        }
        err.fileHandleForReading.readabilityHandler = { [weak self] h in
            let s = String(decoding: h.availableData, as: UTF8.self)
            guard let self else { return }
            self.lock.lock()
            self.stderrText += s
            self.lock.unlock()
        }
        try process.run()
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

    var output: String { lock.lock(); defer { lock.unlock() }; return stdoutText }
    var errors: String { lock.lock(); defer { lock.unlock() }; return stderrText }

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
            if !process.isRunning { throw StartFailure(description: "exited \(process.terminationStatus): \(errors)") }
            usleep(20_000)
        }
        throw StartFailure(description: "no admin URL announced: \(output) \(errors)")
    }

    struct StartFailure: Error, CustomStringConvertible { var description: String }

    var adminURL: String { "http://127.0.0.1:\(admin)" }

    func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for exit; returns the status (SIGKILL after `timeout`).
    @discardableResult
    func wait(timeout: TimeInterval = 15) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        return process.terminationStatus
    }

    func stop() {
        signal(SIGTERM)
        wait()
    }
}

/// Runs a command to completion (killed after `timeout`).
func run(_ exe: String, _ args: [String], input: String? = nil, timeout: TimeInterval = 20, cwd: String? = nil,
         env: [String: String] = [:]) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in env { environment[k] = v }
    p.environment = environment
    let out = Pipe(), err = Pipe(), inp = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = inp
    // Read while it runs: a full pipe would block the child.
    let outBox = SIPClient.Box(), errBox = SIPClient.Box()
    out.fileHandleForReading.readabilityHandler = { h in outBox.append(String(decoding: h.availableData, as: UTF8.self)) }
    err.fileHandleForReading.readabilityHandler = { h in errBox.append(String(decoding: h.availableData, as: UTF8.self)) }
    try p.run()
    if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
    try? inp.fileHandleForWriting.close()
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning && Date() < deadline { usleep(20_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
    out.fileHandleForReading.readabilityHandler = nil
    err.fileHandleForReading.readabilityHandler = nil
    outBox.append(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    errBox.append(String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    return (p.terminationStatus, outBox.value, errBox.value)
}

/// Plain-socket SIP for tests.
enum SIPClient {
    static func register(user: String, contact: String, scheme: String = "sip", transport: String = "UDP", callID: String = UUID().uuidString,
                         cseq: Int = 1, expires: Int = 600, extra: [String] = []) -> String {
        ([
            "REGISTER \(scheme):example.com SIP/2.0",
            "Via: SIP/2.0/\(transport) 127.0.0.1:9;branch=z9hG4bK\(UUID().uuidString.prefix(12));rport",
            "From: <\(scheme):\(user)@example.com>;tag=t\(cseq)", "To: <\(scheme):\(user)@example.com>",
            "Call-ID: \(callID)", "CSeq: \(cseq) REGISTER", "Contact: \(contact)", "Expires: \(expires)", "Max-Forwards: 70",
        ] + extra + ["Content-Length: 0"]).joined(separator: "\r\n") + "\r\n\r\n"
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
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = ["s_client", "-connect", "127.0.0.1:\(port)", "-quiet", "-servername", "localhost"] + extra
        let inPipe = Pipe(), outPipe = Pipe()
        p.standardInput = inPipe
        p.standardOutput = outPipe
        p.standardError = outPipe
        let box = Box()
        outPipe.fileHandleForReading.readabilityHandler = { h in box.append(String(decoding: h.availableData, as: UTF8.self)) }
        try p.run()
        inPipe.fileHandleForWriting.write(Data(text.utf8))
        let deadline = Date().addingTimeInterval(8)
        while Date() < deadline, p.isRunning, !box.value.contains("SIP/2.0 ") || !box.value.contains("\r\n\r\n") { usleep(20_000) }
        if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        p.waitUntilExit()
        outPipe.fileHandleForReading.readabilityHandler = nil
        return box.value
    }

    final class Box: @unchecked Sendable {
        // Safety: guarded by the lock.
        private let lock = NSLock()
        private var text = ""
        func append(_ s: String) { lock.lock(); text += s; lock.unlock() }
        var value: String { lock.lock(); defer { lock.unlock() }; return text }
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

/// 127.0.0.1:`port` as a socket address (0: any port, for the kernel to choose).
func loopbackAddress(port: Int) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return addr
}
