import Foundation
import SIPTestSupport

/// linphonec 5.1, driven through standard input (a pipe), observed through its standard
/// output (`Call 1 with … connected.`) and its log file (`… to [LinphoneRegistrationOk]`).
///
/// It gets its own HOME (with `.local/share/linphone`, else its database cannot open and it
/// creates no listening point) and config (`-c`): TLS only, on 127.0.0.1. It registers
/// `"USER" <sips:USER@DOMAIN>` with `reg_proxy=<sips:localhost:PORT>` (the REGISTER's
/// Request-URI is still `sips:DOMAIN`). It verifies the server certificate against `caFile`
/// (`root_ca`) and by name (it connects by name, so `localhost`, not 127.0.0.1). After the
/// first 200 it re-registers with its Contact rewritten to the connection's source port,
/// where nothing listens: its binding is reachable only through its flow. It accepts no
/// incoming TLS connection (it has no server certificate). Without a server port it has no
/// account and calls directly.
final class Linphonec: @unchecked Sendable {
    // Safety: `logText`, `logOffset` and `consumed` are only touched under `lock`.
    let user: String
    let domain: String
    let scheme: String
    /// Its folder (HOME, config, log); removed by `stop()`.
    let dir: String
    var logFile: String { dir + "/linphone.log" }
    private var child: ChildProcess?
    private let lock = NSLock()
    private var logText = ""
    private var logOffset: UInt64 = 0
    private var consumed: [String: Int] = [:]

    /// - Parameters:
    ///   - serverPort: the server's TLS port; nil: no account (direct calls).
    ///   - caFile: the CA that signed the server certificate; nil: the system store.
    ///   - verify: `verify_server_certs` / `verify_server_cn`.
    ///   - host: the name it connects to (and checks the certificate for).
    ///   - outbound: also `reg_route` (the proxy, `;lr`): it then sends every request, calls
    ///     included, through the server. Without it a call goes to the Request-URI's domain
    ///     (`example.com`, which does not resolve).
    init(user: String, serverPort: Int?, caFile: String?, domain: String = "example.com", scheme: String = "sips",
         host: String = "localhost", password: String? = nil, verify: Bool = true, autoAnswer: Bool = true,
         outbound: Bool = false) throws {
        guard let exe = Softphones.linphonec else { throw Softphones.Failure(description: "linphonec is not installed") }
        self.user = user
        self.domain = domain
        self.scheme = scheme
        dir = NSTemporaryDirectory() + "linphonec-\(UUID().uuidString)"
        let home = dir + "/home"
        try FileManager.default.createDirectory(atPath: home + "/.local/share/linphone", withIntermediateDirectories: true)
        var rc = [
            "[sip]", "sip_port=0", "sip_tcp_port=0", "sip_tls_port=-1", "bind_address=127.0.0.1",
            "verify_server_certs=\(verify ? 1 : 0)", "verify_server_cn=\(verify ? 1 : 0)",
            "ipv6_migration_done=1", "use_ipv6=0",
        ]
        if let caFile { rc.append("root_ca=\(caFile)") }
        if serverPort != nil { rc.append("default_proxy=0") }
        rc += ["", "[rtp]", "audio_rtp_port=-1", "video_rtp_port=-1", "text_rtp_port=-1",
               "", "[video]", "capture=0", "display=0", "automatically_initiate=0", "automatically_accept=0"]
        if let serverPort {
            let proxy = scheme == "sips" ? "<sips:\(host):\(serverPort)>" : "<sip:\(host):\(serverPort);transport=tls>"
            rc += ["", "[proxy_0]", "reg_proxy=\(proxy)", "reg_identity=\"\(user)\" <\(scheme):\(user)@\(domain)>",
                   "reg_expires=600", "reg_sendregister=1", "publish=0"]
            if outbound { rc.append("reg_route=" + proxy.dropLast() + ";lr>") }
            if let password {
                rc += ["", "[auth_info_0]", "username=\(user)", "passwd=\(password)", "domain=\(domain)"]
            }
        }
        try (rc.joined(separator: "\n") + "\n").write(toFile: dir + "/linphonerc", atomically: true, encoding: .utf8)
        _ = FileManager.default.createFile(atPath: dir + "/linphone.log", contents: nil)
        var env = ["HOME": home]
        for k in ["XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_CACHE_HOME"] { env[k] = home + "/.local/share" }
        child = try ChildProcess(exe, ["-c", dir + "/linphonerc", "-d", "6", "-l", dir + "/linphone.log"], env: env, cwd: dir,
                                     stdin: true)
        if serverPort == nil { send("ipv6 disable") }  // else its SDP offers the default route's IPv6 address
        if autoAnswer { send("autoanswer enable") }
    }

    deinit { stop() }

    /// Writes one command line to its standard input.
    func send(_ command: String) { child?.write(command) }

    /// Standard output (prompts, `Call N … connected.`, `… ended (…)`).
    var output: String { child?.output ?? "" }

    /// The log file so far.
    var log: String {
        lock.lock(); defer { lock.unlock() }
        if let h = FileHandle(forReadingAtPath: logFile) {
            try? h.seek(toOffset: logOffset)
            let data = h.readDataToEndOfFile()
            try? h.close()
            logOffset += UInt64(data.count)
            logText += String(decoding: data, as: UTF8.self)
        }
        return logText
    }

    private func occurrences(_ needle: String) -> Int {
        output.components(separatedBy: needle).count - 1 + log.components(separatedBy: needle).count - 1
    }

    /// Waits until `text` occurs once more in standard output or the log than it did at the
    /// previous successful `waitFor` of the same text (each text has its own cursor).
    @discardableResult
    func waitFor(_ text: String, timeout: TimeInterval = 10) -> Bool {
        eventually(timeout: timeout) {
            let n = occurrences(text)
            lock.lock(); defer { lock.unlock() }
            guard n > consumed[text, default: 0] else { return false }
            consumed[text, default: 0] += 1
            return true
        }
    }

    /// Waits for the account's registration; false if it failed or after `timeout` (generous:
    /// linphonec's start-up alone took over 10 s on this 2-core machine while a build ran).
    func waitRegistered(timeout: TimeInterval = 30) -> Bool {
        var ok = false
        _ = eventually(timeout: timeout) {
            let text = log
            ok = text.contains("to [LinphoneRegistrationOk]")
            return ok || text.contains("to [LinphoneRegistrationFailed]")
        }
        return ok
    }

    /// Calls `uri` (through the server when registered).
    func dial(_ uri: String) { send("call \(uri)") }

    /// Answers the ringing call (without auto-answer).
    func answer() { send("answer") }

    /// Hangs up the current call.
    func hangup() { send("terminate") }

    /// Quits (it unregisters), then SIGTERM/SIGKILL, and removes its folder (`output` and
    /// what `log` has read stay). Idempotent.
    func stop() {
        guard let c = child else { return }
        c.write("quit")
        c.stop(grace: 5)
        _ = log
        try? FileManager.default.removeItem(atPath: dir)
    }
}
