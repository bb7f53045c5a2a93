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
        subcommands: [Serve.self, Lookup.self],
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

    func run() async throws {
        var o = ConfigurationOverrides()
        o.udp = udp.isEmpty ? nil : udp
        o.tcp = tcp.isEmpty ? nil : tcp
        o.tls = tls.isEmpty ? nil : tls
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
        var file = config
        if file == nil, FileManager.default.fileExists(atPath: "config/registrar.yaml") { file = "config/registrar.yaml" }
        if let f = config, !FileManager.default.fileExists(atPath: f) {
            throw ConfigurationError("--config \(f): no such file")
        }
        let configuration = try ConfigurationLoader.load(file: file, environment: ProcessInfo.processInfo.environment, overrides: o)
        let level = Logger.Level(rawValue: configuration.logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var h = StreamLogHandler.standardError(label: label)
            h.logLevel = level
            return h
        }
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
        abstract: "Print the contacts a lookup of ADDR returns, one per line (exit 0 if any, 1 if none, 2 on error).")

    @Argument(help: "A sip: or sips: address, e.g. sips:alice@example.com.") var address: String
    @Option(help: "The admin API of a running registrar.") var admin: String = "http://127.0.0.1:8060"

    func run() async throws {
        let result: (status: Int, body: String)
        do {
            result = try await AdminClient.get(base: admin, path: "/v1/bindings?aor=" + AdminClient.queryEncode(address))
        } catch {
            throw ConfigurationError("\(error)")
        }
        struct Answer: Decodable {
            struct Contact: Decodable { var uri: String }
            var contacts: [Contact]?
            var error: String?
        }
        guard let answer = try? JSONDecoder().decode(Answer.self, from: Data(result.body.utf8)) else {
            throw ConfigurationError("the admin API at \(admin) answered HTTP \(result.status) without JSON")
        }
        if let e = answer.error { throw ConfigurationError(e) }
        let contacts = answer.contacts ?? []
        for c in contacts { print(c.uri) }
        throw ExitCode(contacts.isEmpty ? 1 : 0)
    }
}
