import ArgumentParser
import Foundation
import Logging
import SIPRegistrarServer

/// `sip-registrar`: argument parsing only; the work is in SIPRegistrarServer.
@main
struct SIPRegistrarCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sip-registrar",
        abstract: "A TLS-capable SIP/SIPS registrar.",
        version: SIPRegistrarVersion.current,
        subcommands: [Serve.self, Lookup.self, Passwd.self],
        defaultSubcommand: Serve.self)

    /// Bad input exits 2 with one line; --help and --version exit 0.
    static func main() async {
        do {
            var command = try parseAsRoot()
            if var async = command as? any AsyncParsableCommand {
                try await async.run()
            } else {
                try command.run()
            }
        } catch let e as ConfigurationError {
            FileHandle.standardError.write(Data("sip-registrar: \(e.description)\n".utf8))
            Foundation.exit(2)
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            let exitCode = Self.exitCode(for: error)
            if exitCode == .success {
                Self.exit(withError: error)
            }
            let message = Self.message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data("sip-registrar: \(message)\n".utf8))
            Foundation.exit(2)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the registrar (the default command).",
        discussion: "Precedence: flags > environment (SIP_REGISTRAR_...) > config file > built-in defaults. Listener flags replace the configured listeners.")

    @Option(help: "Configuration file (default: config/registrar.yaml when it exists).") var config: String?
    @Option(help: "UDP listener HOST:PORT (repeatable).") var udp: [String] = []
    @Option(help: "TCP listener HOST:PORT (repeatable).") var tcp: [String] = []
    @Option(help: "TLS listener HOST:PORT (repeatable).") var tls: [String] = []
    @Option(help: "SIP over WebSocket listener HOST:PORT (repeatable; RFC 7118).") var ws: [String] = []
    @Option(help: "SIP over secure WebSocket listener HOST:PORT (repeatable; TLS certificate as for --tls).") var wss: [String] = []
    @Option(help: "TLS certificate chain (PEM), or 'auto' for a development certificate.") var cert: String?
    @Option(help: "TLS private key (PEM).") var key: String?
    @Option(help: "CA file for client certificates.") var ca: String?
    @Option(name: .customLong("client-certs"), help: "Client certificates: none, optional or required.") var clientCerts: String?
    @Option(help: "Served domain (repeatable; a domain includes its subdomains).") var domain: [String] = []
    @Option(name: .customLong("min-expires"), help: "Shortest accepted registration, seconds.") var minExpires: Int?
    @Option(name: .customLong("max-expires"), help: "Longest granted registration, seconds.") var maxExpires: Int?
    @Option(help: "Binding store: memory, sqlite:PATH or postgres://USER@HOST:PORT/DB.") var store: String?
    @Option(help: "Admin HTTP API HOST:PORT, or off.") var admin: String?
    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.") var logLevel: String?
    @Option(help: "Authentication: off, digest, certificate or digest-or-certificate (default: digest with --users, else off).")
    var auth: String?
    @Option(help: "Users file for digest authentication (sip-registrar passwd writes it).") var users: String?
    @Option(help: "Host name or address peers reach this server at (the proxy's Via and Record-Route).") var advertise: String?

    func run() async throws {
        var o = ConfigurationOverrides()
        o.udp = udp.isEmpty ? nil : udp
        o.tcp = tcp.isEmpty ? nil : tcp
        o.tls = tls.isEmpty ? nil : tls
        o.ws = ws.isEmpty ? nil : ws
        o.wss = wss.isEmpty ? nil : wss
        o.cert = cert
        o.key = key
        o.ca = ca
        o.clientCerts = clientCerts
        o.domains = domain.isEmpty ? nil : domain
        o.minExpires = minExpires
        o.maxExpires = maxExpires
        o.store = store
        o.admin = admin
        o.logLevel = logLevel
        o.auth = auth
        o.advertise = advertise
        o.users = users
        var file = config
        if file == nil, FileManager.default.fileExists(atPath: "config/registrar.yaml") { file = "config/registrar.yaml" }
        if let f = config, !FileManager.default.fileExists(atPath: f) {
            throw ConfigurationError("--config \(f): no such file")
        }
        let configuration = try ConfigurationLoader.load(file: file, environment: ProcessInfo.processInfo.environment, overrides: o)
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        // Lines are written by a background queue, never by an event loop (a slow terminal or
        // pipe must not stall SIP answers); past 10,000 waiting lines they are dropped and counted.
        LoggingSystem.bootstrap { label in
            BackgroundLogHandler(label: label, level: level)
        }
        defer { LogSink.standardError.flush() }
        var logger = Logger(label: "sip-registrar")
        logger.logLevel = level
        let server = RegistrarServer(configuration: configuration, logger: logger)
        try await server.run { line in
            FileHandle.standardOutput.write(Data((line + "\n").utf8))
        }
    }
}

struct Lookup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the contacts a lookup of ADDR returns, one per line (exit 0 if any, 1 if none, 2 on error).",
        discussion: """
            The admin address and the access token file come from the same configuration as `serve` \
            (config/registrar.yaml in the working directory or --config, then SIP_REGISTRAR_... variables): \
            run it where the registrar runs and it finds the token by itself.
            """)

    @Argument(help: "A sip: or sips: address, e.g. sips:alice@example.com.") var address: String
    @Option(help: "The admin API of a running registrar (default: the configured admin address, else http://127.0.0.1:8060).")
    var admin: String?
    @Option(name: .customLong("token-file"), help: "The admin API's access token file (default: the configured one).")
    var tokenFile: String?
    @Option(help: "Configuration file (default: config/registrar.yaml when it exists).") var config: String?

    func run() async throws {
        var file = config
        if file == nil, FileManager.default.fileExists(atPath: "config/registrar.yaml") { file = "config/registrar.yaml" }
        if let f = config, !FileManager.default.fileExists(atPath: f) {
            throw ConfigurationError("--config \(f): no such file")
        }
        let settings = try ConfigurationLoader.loadForClient(file: file, environment: ProcessInfo.processInfo.environment)
        let base = admin ?? AdminClient.url(for: settings.admin) ?? "http://127.0.0.1:8060"
        let tokenPath = tokenFile ?? settings.resolvedAdminTokenFile
        var token: String?
        var tokenProblem: String?
        do throws(ConfigurationError) {
            token = try AdminToken.read(tokenPath)
        } catch {
            // Asked for explicitly: that is an error now. Otherwise the server's answer tells.
            if tokenFile != nil { throw error }
            tokenProblem = error.description
        }
        let result: (status: Int, body: String)
        do {
            result = try await AdminClient.get(base: base, path: "/v1/bindings?aor=" + AdminClient.queryEncode(address), token: token)
        } catch {
            throw ConfigurationError("\(error)")
        }
        struct Answer: Decodable {
            struct Contact: Decodable { var uri: String }
            var contacts: [Contact]?
            var error: String?
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(result.body.utf8)) else {
            throw ConfigurationError("the admin API at \(base) answered HTTP \(result.status) without JSON")
        }
        if result.status == 401 {
            let why = tokenProblem.map { " (\($0))" } ?? " (token from \(tokenPath); give --token-file)"
            throw ConfigurationError("the admin API at \(base) refused the request: \(answer.error ?? "401")\(why)")
        }
        if let e = answer.error { throw ConfigurationError(e) }
        let contacts = answer.contacts ?? []
        for c in contacts { print(c.uri) }
        throw ExitCode(contacts.isEmpty ? 1 : 0)
    }
}

struct Passwd: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Set a user's digest password in a users file (read from standard input; only hashes are stored).",
        discussion: """
            The password is the first line of standard input (echo is off on a terminal). The entry stores \
            H(user:realm:password) for SHA-256 and MD5. An existing entry is replaced and keeps its aliases \
            unless --alias is given. Send SIGHUP to a running registrar to load the change.
            """)

    @Option(help: "The users file (created if missing, written with mode 600).") var users: String
    @Option(help: "Another address of record this user may register (repeatable; replaces the aliases).") var alias: [String] = []
    @Argument(help: "USER@DOMAIN: the user name and its realm (the domain of its address of record).") var address: String

    func run() throws {
        let password = Self.readPassword(prompt: "Password for \(address): ")
        guard let password else { throw ConfigurationError("no password on standard input") }
        let created = try UsersFile.setPassword(path: users, address: address, password: password,
                                                aliases: alias.isEmpty ? nil : alias)
        print("\(created ? "added" : "updated") \(address) in \(users)")
    }

    /// One line from standard input; on a terminal, prompted with echo turned off.
    static func readPassword(prompt: String) -> String? {
        guard isatty(STDIN_FILENO) == 1 else { return readLine(strippingNewline: true) }
        FileHandle.standardError.write(Data(prompt.utf8))
        var old = termios()
        tcgetattr(STDIN_FILENO, &old)
        var quiet = old
        quiet.c_lflag &= ~tcflag_t(ECHO)
        tcsetattr(STDIN_FILENO, TCSANOW, &quiet)
        defer {
            tcsetattr(STDIN_FILENO, TCSANOW, &old)
            FileHandle.standardError.write(Data("\n".utf8))
        }
        return readLine(strippingNewline: true)
    }
}
