import Foundation
import SIPTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A real PostgreSQL server from Debian's packages, on loopback, in a temporary folder:
/// initdb (password authentication), pg_ctl start, a database. No system service.
/// As root, the server runs as the `postgres` user (PostgreSQL refuses to run as root).
final class PostgresServer: @unchecked Sendable {
    // Safety: the properties are set in init and only read afterwards.
    let dir: String
    let port: Int
    let password = "pg-\(UUID().uuidString.prefix(8))"
    let bin: String

    static var binDir: String? {
        let base = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).compactMap(Int.init).sorted()
        for v in versions.reversed() where FileManager.default.isExecutableFile(atPath: "\(base)/\(v)/bin/initdb") {
            return "\(base)/\(v)/bin"
        }
        return nil
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    init() throws {
        guard let bin = Self.binDir else { throw Failure(description: "PostgreSQL server binaries not found (apt-get install postgresql)") }
        self.bin = bin
        dir = NSTemporaryDirectory() + "sipreg-pg-\(UUID().uuidString)"
        port = freeLoopbackPort()
        mkdir(dir, 0o700)
        let pwfile = dir + "/pw"
        try password.write(toFile: pwfile, atomically: true, encoding: .utf8)
        if getuid() == 0, let pw = getpwnam("postgres") {
            chown(dir, pw.pointee.pw_uid, pw.pointee.pw_gid)
            chown(pwfile, pw.pointee.pw_uid, pw.pointee.pw_gid)
        }
        let initdb = try asServerUser("initdb", ["-D", dir + "/data", "-U", "registrar", "--auth=scram-sha-256", "--pwfile=\(pwfile)",
                                                 "--no-sync", "-E", "UTF8"])
        guard initdb.status == 0 else { throw Failure(description: "initdb: \(initdb.out) \(initdb.err)") }
        try start()
        let created = spawnAndWait([bin + "/createdb", "-h", "127.0.0.1", "-p", String(port), "-U", "registrar", "sipreg"],
                                   env: ["PGPASSWORD": password])
        guard created.status == 0 else { throw Failure(description: "createdb: \(created.err)") }
    }

    /// Runs a PostgreSQL program as the `postgres` user when we are root.
    func asServerUser(_ program: String, _ args: [String], timeout: TimeInterval = 60) throws -> (status: Int32, out: String, err: String) {
        if getuid() == 0 {
            return spawnAndWait(["/usr/sbin/runuser", "-u", "postgres", "--", bin + "/" + program] + args, cwd: dir, timeout: timeout)
        }
        return spawnAndWait([bin + "/" + program] + args, cwd: dir, timeout: timeout)
    }

    func start() throws {
        let r = try asServerUser("pg_ctl", ["-D", dir + "/data", "-l", dir + "/log", "-w", "-o",
                                            "-p \(port) -k \(dir) -c listen_addresses=127.0.0.1 -c fsync=off", "start"])
        guard r.status == 0 else { throw Failure(description: "pg_ctl start: \(r.out) \(r.err)") }
    }

    func stop(mode: String = "fast") {
        _ = try? asServerUser("pg_ctl", ["-D", dir + "/data", "-m", mode, "-w", "stop"])
    }

    func restart() throws {
        stop()
        try start()
    }

    /// One SQL statement through psql; its unaligned output.
    func sql(_ statement: String) throws -> String {
        let r = spawnAndWait([bin + "/psql", "-h", "127.0.0.1", "-p", String(port), "-U", "registrar", "-d", "sipreg", "-Atc", statement],
                             env: ["PGPASSWORD": password])
        guard r.status == 0 else { throw Failure(description: "psql: \(r.err)") }
        return r.out.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    var url: String { "postgres://registrar@127.0.0.1:\(port)/sipreg?sslmode=disable" }
    /// What a node needs in its environment: the password, never on the command line.
    var env: [String: String] { ["SIP_REGISTRAR_STORE_PASSWORD": password] }

    func destroy() {
        stop(mode: "immediate")
        try? FileManager.default.removeItem(atPath: dir)
    }
}


/// posix_spawn and waitpid, output through files: Foundation's Process did not reap
/// `runuser` (it stayed a zombie and `isRunning` stayed true), and a daemon started by
/// pg_ctl must not hold a pipe the test reads to its end.
func spawnAndWait(_ argv: [String], cwd: String? = nil, env: [String: String] = [:], timeout: TimeInterval = 60)
    -> (status: Int32, out: String, err: String) {
    let base = NSTemporaryDirectory() + "sipreg-spawn-\(UUID().uuidString)"
    let outPath = base + ".out", errPath = base + ".err"
    defer { unlink(outPath); unlink(errPath) }
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in env { environment[k] = v }
    let envStrings = environment.map { "\($0.key)=\($0.value)" }
    var cArgs = argv.map { strdup($0) } + [nil]
    var cEnv = envStrings.map { strdup($0) } + [nil]
    defer {
        for p in cArgs { free(p) }
        for p in cEnv { free(p) }
    }
    var pid: pid_t = 0
    let rc = posix_spawn(&pid, argv[0], &actions, nil, &cArgs, &cEnv)
    guard rc == 0 else { return (127, "", "posix_spawn \(argv[0]): \(String(cString: strerror(rc)))") }
    var status: Int32 = 0
    let deadline = Date().addingTimeInterval(timeout)
    while waitpid(pid, &status, WNOHANG) == 0 {
        if Date() > deadline {
            kill(pid, SIGKILL)
            waitpid(pid, &status, 0)
            break
        }
        usleep(10_000)
    }
    let code: Int32 = (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    let out = (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? ""
    let err = (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? ""
    return (code, out, err)
}
