import Configuration
import SIPMessage

#if canImport(Glibc)
import Glibc
#endif

/// Values given on the command line; nil means "not given". The executable fills it from its
/// parsed flags; the loader hands it to the settings table as the flags provider.
package struct ConfigurationOverrides: Sendable {
    package var udp: [String]?
    package var tcp: [String]?
    package var tls: [String]?
    package var ws: [String]?
    package var wss: [String]?
    package var cert: String?
    package var key: String?
    package var ca: String?
    package var clientCerts: String?
    package var domains: [String]?
    package var minExpires: Int?
    package var maxExpires: Int?
    package var store: String?
    package var admin: String?
    package var logLevel: String?
    package var auth: String?
    package var users: String?
    package var advertise: String?

    package init() {}

    /// The given values by flag (`--min-expires`).
    var byFlag: [String: ConfigContent] {
        var out: [String: ConfigContent] = [:]
        let lists: [(String, [String]?)] = [("--udp", udp), ("--tcp", tcp), ("--tls", tls), ("--ws", ws), ("--wss", wss), ("--domain", domains)]
        for case let (flag, list?) in lists { out[flag] = .stringArray(list) }
        let texts: [(String, String?)] = [("--cert", cert), ("--key", key), ("--ca", ca), ("--client-certs", clientCerts),
                                          ("--store", store), ("--admin", admin), ("--log-level", logLevel), ("--auth", auth),
                                          ("--users", users), ("--advertise", advertise)]
        for case let (flag, text?) in texts { out[flag] = .string(text) }
        for case let (flag, n?) in [("--min-expires", minExpires), ("--max-expires", maxExpires)] { out[flag] = .int(n) }
        return out
    }

    /// The flags as a provider keyed like the file (`registrar.min_expires`).
    package var provider: InMemoryProvider {
        let given = byFlag
        var values: [AbsoluteConfigKey: ConfigValue] = [:]
        for setting in ConfigurationSetting.all.flatMap(\.settings) {
            guard let flag = setting.flag, let content = given[flag], let key = setting.configKey else { continue }
            values[key] = ConfigValue(content, isSecret: setting.isSecret)
        }
        return InMemoryProvider(name: "flags", values: values)
    }
}

/// Builds the configuration from the settings table (``ConfigurationSetting/all``) through three
/// providers: built-in defaults < config file < environment (`SIP_REGISTRAR_…`) < flags, each
/// level overriding the one below. Listener flags replace the configured list.
package enum ConfigurationLoader {
    /// A `sip:`/`sips:` URI naming a host (and port), no user part: where other nodes reach this one.
    static func isNodeAddress(_ text: String) -> Bool {
        guard let uri = SIPURI(text), uri.isSIP, uri.user == nil, !uri.host.isEmpty else { return false }
        return true
    }

    /// A DNS name or an IP address (IPv6 with or without brackets): what may stand in a Via sent-by.
    static func isHostName(_ text: String) -> Bool {
        var t = Substring(text)
        if t.hasPrefix("["), t.hasSuffix("]") { t = t.dropFirst().dropLast() }
        guard !t.isEmpty, t.utf8.count <= 253 else { return false }
        if t.contains(":") { return t.allSatisfy { $0.isHexDigit || $0 == ":" || $0 == "." } }
        return t.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == ".") }
    }

    /// The configuration `serve` runs with, validated.
    /// - Parameters:
    ///   - file: The configuration file, if any.
    ///   - environment: The process environment.
    ///   - overrides: The flags given.
    package static func load(file: String?, environment: [String: String], overrides: ConfigurationOverrides) throws(ConfigurationError) -> ServerConfiguration {
        var (c, origins) = try read(file: file, environment: environment, flags: overrides.provider)
        if c.storePassword == nil, let f = c.storePasswordFile {
            guard let text = readFile(f) else { throw ConfigurationError("store_password_file \(f): cannot read it") }
            c.storePassword = String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        }
        do {
            try c.validate()
        } catch {
            // A module's check names the setting; say where its value came from.
            guard let origin = error.settings.lazy.compactMap({ origins[$0] }).first else { throw error }
            let value = SettingValue(content: nil, origin: origin)
            throw value.fail("\(value.name): \(error.reason)")
        }
        return c
    }

    /// What a client of the admin API on this machine (`sip-registrar lookup`) needs: the
    /// configuration file and environment read as `serve` reads them, without the checks that
    /// only matter to a server.
    package static func loadForClient(file: String?, environment: [String: String]) throws(ConfigurationError) -> ServerConfiguration {
        try read(file: file, environment: environment, flags: nil).configuration
    }

    /// Applies every level, lowest first, to the defaults.
    /// Also says where each setting's value came from, by file key (the highest level that gave it).
    static func read(file: String?, environment: [String: String], flags: InMemoryProvider?) throws(ConfigurationError)
        -> (configuration: ServerConfiguration, origins: [String: SettingOrigin]) {
        let secrets = Set(ConfigurationSetting.all.flatMap(\.settings).filter(\.isSecret).flatMap(\.environment))
        var levels: [ConfigurationLevel] = []
        if let file {
            levels.append(.file(try YAMLFileProvider(path: file, keys: ConfigurationSetting.fileKeys, sections: ConfigurationSetting.sections)))
        }
        levels.append(.environment(EnvironmentVariablesProvider(environmentVariables: environment, secretsSpecifier: .specific(secrets))))
        if let flags { levels.append(.flags(flags)) }
        var c = ServerConfiguration.defaults
        var origins: [String: SettingOrigin] = [:]
        for level in levels {
            for entry in ConfigurationSetting.all {
                switch entry {
                case .setting(let s):
                    if let v = try level.value(of: s) {
                        try s.apply(v, &c)
                        if let key = s.key { origins[key] = v.origin }
                    }
                case .group(let g):
                    var values: [SettingValue?] = []
                    for s in g.members { values.append(try level.value(of: s)) }
                    if values.contains(where: { $0 != nil }) { try g.apply(values, &c) }
                    for (s, v) in zip(g.members, values) { if let key = s.key, let v { origins[key] = v.origin } }
                }
            }
        }
        return (c, origins)
    }

    /// The whole text of a file; nil when it cannot be read or is not UTF-8.
    static func readFile(_ path: String) -> String? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 8192)
        while true {
            let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
            if n > 0 { bytes += chunk[0..<n] }
            if n < chunk.count { break }
        }
        return String(validating: bytes, as: UTF8.self)
    }
}

/// One level of the configuration: a provider, and how a setting is looked up in it.
enum ConfigurationLevel {
    case file(YAMLFileProvider)
    case environment(EnvironmentVariablesProvider)
    case flags(InMemoryProvider)

    /// The setting's value at this level; nil when not given here.
    func value(of s: ConfigurationSetting) throws(ConfigurationError) -> SettingValue? {
        switch self {
        case .file(let file):
            guard let key = s.key, let configKey = s.configKey else { return nil }
            let origin = SettingOrigin.file(file, key: key)
            do {
                guard let content = try file.value(forKey: configKey, type: s.type).value?.content else { return nil }
                return SettingValue(content: content, origin: origin)
            } catch {
                if s.scalarIsList, case .string(let text)? = try? file.value(forKey: configKey, type: .string).value?.content {
                    return SettingValue(content: .stringArray([text]), origin: origin)
                }
                return SettingValue(content: nil, origin: origin)
            }
        case .environment(let env):
            for variable in s.environment {
                guard case .string(let text)? = try? env.value(forKey: AbsoluteConfigKey([variable]), type: .string).value?.content else {
                    continue
                }
                let origin = SettingOrigin.environment(variable)
                switch s.type {
                case .int:
                    guard let n = Int(text) else { throw ConfigurationError("environment \(variable)='\(text)' is not a number") }
                    return SettingValue(content: .int(n), origin: origin)
                case .stringArray:
                    return SettingValue(content: .stringArray(text.split(separator: ",").map(String.init)), origin: origin)
                default:
                    return SettingValue(content: .string(text), origin: origin)
                }
            }
            return nil
        case .flags(let flags):
            guard let flag = s.flag, let configKey = s.configKey,
                  let content = try? flags.value(forKey: configKey, type: s.type).value?.content else { return nil }
            return SettingValue(content: content, origin: .flag(flag))
        }
    }
}
