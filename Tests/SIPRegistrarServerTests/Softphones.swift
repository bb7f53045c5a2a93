import Foundation
import SIPTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Real softphones (Debian's baresip 1.0 and linphonec 5.1) driven from tests: each runs in
/// its own temporary folder on loopback, registers through the server under test, and can
/// call, answer and hang up. See /work/shared/CLIENTS.md for what they send.
enum Softphones {
    /// `name` on the PATH (or in /usr/bin), nil when not installed.
    static func executable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        for dir in path.split(separator: ":").map(String.init) + ["/usr/bin", "/usr/local/bin"] {
            let candidate = dir + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    static let baresip = executable("baresip")
    static let linphonec = executable("linphonec")

    /// Where baresip keeps its modules (Debian: /usr/lib/baresip/modules).
    static let baresipModules: String? = ["/usr/lib/baresip/modules", "/usr/local/lib/baresip/modules",
                                          "/usr/lib/x86_64-linux-gnu/baresip/modules"]
        .first { FileManager.default.fileExists(atPath: $0 + "/ctrl_tcp.so") }

    static var haveBaresip: Bool { baresip != nil && baresipModules != nil }
    static var haveLinphonec: Bool { linphonec != nil }

    /// A fresh development PKI from `certs/generate.sh` (CA, `server.pem`/`server.key` for
    /// localhost, 127.0.0.1 and example.com) in a new temporary folder; the caller removes it.
    static func makePKI(clients: [String] = []) throws -> String {
        try TestCertificates.make(clients: clients).dir
    }

    /// A server started with a fresh development PKI (``makePKI(clients:)``) as its TLS
    /// certificate, and `extra` arguments; the caller stops it and removes `pki`.
    static func tlsServer(_ extra: [String] = []) throws -> (server: ServerProcess, pki: String) {
        let pki = try makePKI()
        do {
            return (try ServerProcess.start(["--cert", pki + "/server.pem", "--key", pki + "/server.key"] + extra), pki)
        } catch {
            try? FileManager.default.removeItem(atPath: pki)
            throw error
        }
    }

    /// Stops a server from ``tlsServer(_:)`` and removes its data folder and PKI.
    static func finish(_ s: ServerProcess, _ pki: String) {
        s.stop()
        try? FileManager.default.removeItem(atPath: s.dataDir)
        try? FileManager.default.removeItem(atPath: pki)
    }

    /// Whether something accepts a TCP connection on 127.0.0.1:`port`.
    static func accepts(port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var addr = loopbackAddress(port: port)
        return withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
    }

    /// A mono 16-bit PCM WAV of silence (baresip's `aufile` needs 8 kHz mono; it ends the
    /// call when the file ends, so make it longer than any call).
    static func silenceWAV(seconds: Int, rate: Int = 8000) -> Data {
        let dataBytes = seconds * rate * 2
        var d = Data()
        func u32(_ v: Int) { withUnsafeBytes(of: UInt32(v).littleEndian) { d.append(contentsOf: $0) } }
        func u16(_ v: Int) { withUnsafeBytes(of: UInt16(v).littleEndian) { d.append(contentsOf: $0) } }
        d.append(contentsOf: Array("RIFF".utf8)); u32(36 + dataBytes); d.append(contentsOf: Array("WAVE".utf8))
        d.append(contentsOf: Array("fmt ".utf8)); u32(16); u16(1); u16(1); u32(rate); u32(rate * 2); u16(2); u16(16)
        d.append(contentsOf: Array("data".utf8)); u32(dataBytes)
        d.append(Data(count: dataBytes))
        return d
    }

    struct Failure: Error, CustomStringConvertible { var description: String }
}

/// baresip 1.0, driven through its `ctrl_tcp` interface (JSON in netstrings).
///
/// The account is added with `uanew` once the control connection is up, so no event is
/// missed. It registers `<sip:USER@DOMAIN;transport=T>` through the outbound proxy
/// `sip:127.0.0.1:PORT;transport=T` (the server under test); without a server port it does
/// not register and only makes or takes direct calls. baresip does not verify the server's
/// TLS certificate. Its Contact is always its own listening address on 127.0.0.1 (user part
/// `USER-0x…`): baresip 1.0 cannot advertise an address it does not listen on.
final class Baresip: @unchecked Sendable {
    // Safety: `buffer`, `events`, `responses`, `consumed` and `socketFD` are only touched under `lock`.

    /// One `ctrl_tcp` event: its `type` (REGISTER_OK, CALL_ESTABLISHED, ...) and its string members.
    struct Event: Sendable, CustomStringConvertible {
        let type: String
        let fields: [String: String]
        let json: String
        var param: String? { fields["param"] }
        var description: String { json }
    }

    let user: String
    let transport: String
    let domain: String
    /// The account line given to `uanew`.
    let account: String
    /// Its folder (config, WAV, uuid); removed by `stop()`.
    let dir: String
    private(set) var controlPort = 0
    private var child: ChildProcess?
    private let lock = NSLock()
    private var socketFD: Int32 = -1
    private var buffer: [UInt8] = []
    private var events: [Event] = []
    private var responses: [String: (ok: Bool, data: String)] = [:]
    private var consumed: [String: Int] = [:]
    private var nextToken = 0

    /// - Parameters:
    ///   - transport: `udp`, `tcp` or `tls`.
    ///   - serverPort: the server's port for `transport`; nil: no registration, no outbound proxy.
    ///   - password: `auth_pass` for digest authentication.
    ///   - answerMode: `auto` answers at once; `manual` waits for `answer()`.
    ///   - certificate: a PEM file holding certificate and key, for accepting TLS connections.
    ///   - accountParameters: more account parameters, e.g. `;sipnat=outbound` (then `reg-id`).
    ///   - trace: `-s`, the SIP messages in `output`.
    init(user: String, transport: String = "udp", serverPort: Int?, domain: String = "example.com", scheme: String = "sip",
         password: String? = nil, answerMode: String = "auto", certificate: String? = nil, accountParameters: String = "",
         trace: Bool = false, audioSeconds: Int = 120) throws {
        guard let exe = Softphones.baresip, let modules = Softphones.baresipModules else {
            throw Softphones.Failure(description: "baresip is not installed")
        }
        self.user = user
        self.transport = transport
        self.domain = domain
        var account: String
        if let serverPort {
            account = "<\(scheme):\(user)@\(domain);transport=\(transport)>;outbound=\"sip:127.0.0.1:\(serverPort);transport=\(transport)\";regint=600"
        } else {
            account = "<\(scheme):\(user)@127.0.0.1;transport=\(transport)>;regint=0"
        }
        if let password { account += ";auth_pass=\(password)" }
        account += ";answermode=\(answerMode)" + accountParameters
        self.account = account
        dir = NSTemporaryDirectory() + "baresip-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try Softphones.silenceWAV(seconds: audioSeconds).write(to: URL(fileURLWithPath: dir + "/silence.wav"))
        // The control port is only free "a moment ago": on a clash baresip fails to start; try another.
        var lastOutput = ""
        for _ in 0..<3 {
            controlPort = freeLoopbackPort()
            try config(modules: modules, certificate: certificate).write(toFile: dir + "/config", atomically: true, encoding: .utf8)
            let c = try ChildProcess(exe, ["-f", dir] + (trace ? ["-s"] : []), cwd: dir)
            child = c
            if connectControl(process: c) { break }
            lastOutput = c.output
            c.stop()
            child = nil
        }
        guard child != nil else {
            try? FileManager.default.removeItem(atPath: dir)
            throw Softphones.Failure(description: "baresip: no control connection: \(lastOutput)")
        }
        let created = try command("uanew", account)
        guard created.ok else {
            stop()
            throw Softphones.Failure(description: "baresip: uanew \(account): \(created.data)")
        }
    }

    deinit { stop() }

    private func config(modules: String, certificate: String?) -> String {
        var lines = [
            "poll_method\t\tepoll",
            "sip_listen\t\t127.0.0.1:0",
            // Local address (SDP, media) on loopback, not the default route's interface.
            "net_interface\t\t127.0.0.1",
            "call_max_calls\t\t4",
            "audio_player\t\taubridge,nil",
            "audio_source\t\taufile,\(dir)/silence.wav",
            "audio_alert\t\taubridge,nil",
            "module_path\t\t\(modules)",
            "module\t\t\tg711.so",
            "module\t\t\taufile.so",
            "module\t\t\taubridge.so",
            "module\t\t\tctrl_tcp.so",
            "module_tmp\t\tuuid.so",
            "module_app\t\tmenu.so",
            "ctrl_tcp_listen\t\t127.0.0.1:\(controlPort)",
        ]
        if let certificate { lines.append("sip_certificate\t\t\(certificate)") }
        return lines.joined(separator: "\n") + "\n"
    }

    private func connectControl(process: ChildProcess) -> Bool {
        // Modules load before "ready"; if ctrl_tcp could not listen (the port was taken since),
        // baresip carries on without it and the port belongs to someone else.
        guard eventually(timeout: 10, { process.output.contains("baresip is ready.") || !process.isRunning }),
              process.isRunning, !process.output.contains("ctrl_tcp: failed") else { return false }
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline && process.isRunning {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = loopbackAddress(port: controlPort)
            let ok = withUnsafePointer(to: &addr) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if ok == 0 {
                lock.lock(); socketFD = fd; lock.unlock()
                // Weakly: an instance nobody stops still deinits (and closes the socket, which ends the thread).
                let reader = Thread { [weak self] in
                    var chunk = [UInt8](repeating: 0, count: 65_536)
                    while true {
                        let n = recv(fd, &chunk, chunk.count, 0)
                        guard n > 0, let self else { break }
                        self.received(chunk[0..<n])
                    }
                }
                reader.name = "baresip-ctrl"
                reader.start()
                return true
            }
            close(fd)
            usleep(20_000)
        }
        return false
    }

    private func received(_ bytes: ArraySlice<UInt8>) {
        lock.lock()
        buffer += bytes
        parseNetstrings()
        lock.unlock()
    }

    /// Takes the complete netstrings `LEN:JSON,` off the front of `buffer` (under `lock`).
    private func parseNetstrings() {
        while let colon = buffer.firstIndex(of: UInt8(ascii: ":")) {
            guard let length = Int(String(decoding: buffer[..<colon], as: UTF8.self)) else { buffer.removeAll(); return }
            let end = colon + 1 + length
            guard buffer.count > end else { return }
            let payload = Array(buffer[(colon + 1)..<end])
            buffer.removeFirst(end + 1)
            guard let object = try? JSONSerialization.jsonObject(with: Data(payload)) as? [String: Any] else { continue }
            var fields: [String: String] = [:]
            for (k, v) in object {
                if let s = v as? String { fields[k] = s } else if let b = v as? Bool { fields[k] = b ? "true" : "false" }
            }
            let json = String(decoding: payload, as: UTF8.self)
            if fields["event"] == "true", let type = fields["type"] {
                events.append(Event(type: type, fields: fields, json: json))
            } else if fields["response"] == "true", let token = fields["token"] {
                responses[token] = (fields["ok"] == "true", fields["data"] ?? "")
            }
        }
    }

    static func netstring(_ text: String) -> [UInt8] { Array("\(text.utf8.count):\(text),".utf8) }

    /// Sends a `ctrl_tcp` command (`dial`, `hangup`, `accept`, `reginfo`, ...) and waits for its response.
    @discardableResult
    func command(_ name: String, _ params: String = "", timeout: TimeInterval = 5) throws -> (ok: Bool, data: String) {
        lock.lock()
        nextToken += 1
        let token = "t\(nextToken)"
        let fd = socketFD
        lock.unlock()
        guard fd >= 0 else { throw Softphones.Failure(description: "baresip: not connected") }
        let body = try JSONSerialization.data(withJSONObject: ["command": name, "params": params, "token": token])
        let message = Self.netstring(String(decoding: body, as: UTF8.self))
        guard send(fd, message, message.count, Int32(MSG_NOSIGNAL)) == message.count else {
            throw Softphones.Failure(description: "baresip: send failed")
        }
        var result: (ok: Bool, data: String)?
        _ = eventually(timeout: timeout) {
            lock.lock(); defer { lock.unlock() }
            result = responses.removeValue(forKey: token)
            return result != nil
        }
        guard let result else { throw Softphones.Failure(description: "baresip: no response to \(name): \(output)") }
        return result
    }

    /// Every event so far.
    var allEvents: [Event] { lock.lock(); defer { lock.unlock() }; return events }

    /// The next event of `type` not yet returned by `waitFor` (each type has its own cursor),
    /// optionally one whose JSON contains `containing`; nil after `timeout`.
    @discardableResult
    func waitFor(_ type: String, containing: String? = nil, timeout: TimeInterval = 10) -> Event? {
        let key = type + "\u{0}" + (containing ?? "")
        var found: Event?
        _ = eventually(timeout: timeout) {
            lock.lock(); defer { lock.unlock() }
            let matching = events.filter { $0.type == type && (containing.map($0.json.contains) ?? true) }
            let seen = consumed[key, default: 0]
            guard matching.count > seen else { return false }
            consumed[key] = seen + 1
            found = matching[seen]
            return true
        }
        return found
    }

    /// Waits for REGISTER_OK; false on REGISTER_FAIL or after `timeout`.
    func waitRegistered(timeout: TimeInterval = 30) -> Bool {
        var ok = false
        _ = eventually(timeout: timeout) {
            let types = allEvents.map(\.type)
            ok = types.contains("REGISTER_OK")
            return ok || types.contains("REGISTER_FAIL")
        }
        if ok { _ = waitFor("REGISTER_OK", timeout: 0) }
        return ok
    }

    /// Dials `uri` from the account (through the outbound proxy when registered). baresip
    /// prepends `sip:` to anything that does not contain `sip:` and adds the account's
    /// `;transport=`; see CLIENTS.md for `sips:`.
    func dial(_ uri: String) throws {
        let r = try command("dial", uri)
        guard r.ok else { throw Softphones.Failure(description: "baresip: dial \(uri): \(r.data)") }
    }

    /// Answers the ringing call (answer mode `manual`).
    func answer() throws { try command("accept") }

    /// Hangs up the current call.
    func hangup() throws { try command("hangup") }

    /// Standard output and error (the SIP trace with `trace: true`).
    var output: String { child?.output ?? "" }

    /// Ends baresip (`quit`: it unregisters) and removes its folder (`output` and the events
    /// stay). Idempotent.
    func stop() {
        // `quit` (it unregisters, then exits): signals do not help, see `ChildProcess.stop`.
        lock.lock()
        let fd = socketFD
        socketFD = -1
        lock.unlock()
        if fd >= 0 {
            let message = Self.netstring(#"{"command":"quit","params":"","token":"quit"}"#)
            _ = send(fd, message, message.count, Int32(MSG_NOSIGNAL))
        }
        if let child { _ = eventually(timeout: 5) { !child.isRunning } }
        if fd >= 0 { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
        child?.stop(grace: 5)
        try? FileManager.default.removeItem(atPath: dir)
    }
}
