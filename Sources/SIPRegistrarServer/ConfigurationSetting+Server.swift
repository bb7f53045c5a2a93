import SIPLocationStores
import Configuration
import SIPMessage
import SIPRegistrar

extension ConfigurationSetting {
    // MARK: auth

    static let auth: [ConfigurationEntry] = [
        .setting(.init("auth.mode", env: ["SIP_REGISTRAR_AUTH"], flag: "--auth", .string) { v, c throws(ConfigurationError) in
            // An empty mode in the file means "digest when a users file is given, else off".
            if v.origin.isFile, v.text.isEmpty {
                c.security.auth = nil
                return
            }
            guard let mode = AuthenticationMode(rawValue: v.text) else {
                throw v.fail("\(v.name) must be one of \(AuthenticationMode.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(v.text)')")
            }
            c.security.auth = mode
        }),
        .setting(.init("auth.users", env: ["SIP_REGISTRAR_USERS"], flag: "--users", .string) { v, c in c.security.users = v.nonEmpty }),
        .setting(.init("auth.secret_file", .string) { v, c in c.security.secretFile = v.nonEmpty }),
        .setting(.init("auth.realm", .string) { v, c in c.security.realm = v.nonEmpty }),
        .setting(.init("auth.nonce_lifetime", .int) { v, c throws(ConfigurationError) in
            guard let n = v.int else { throw v.fail("auth.nonce_lifetime must be a positive number of seconds") }
            c.security.nonceLifetime = n
        }),
        .setting(.init("auth.algorithms", .stringArray) { v, c throws(ConfigurationError) in
            let names = DigestAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")
            guard let items = v.list, !items.isEmpty else { throw v.fail("auth.algorithms must be a non-empty list of \(names)") }
            var list: [DigestAlgorithm] = []
            for (i, item) in items.enumerated() {
                guard let a = DigestAlgorithm(token: item) else {
                    throw v.fail(item: i, "auth.algorithms: unknown algorithm '\(item)' (expected \(names))")
                }
                guard !list.contains(a) else { throw v.fail(item: i, "auth.algorithms: \(a.rawValue) is listed twice") }
                list.append(a)
            }
            c.security.algorithms = list
        }),
        .setting(.init("auth.trusted", .stringArray) { v, c throws(ConfigurationError) in
            c.security.trusted = try addressSet(v, "auth.trusted")
        }),
        .setting(.init("auth.domains", .string) { v, c throws(ConfigurationError) in
            guard case .file(let file, _) = v.origin, let pairs = file.pairs(of: "auth.domains") else {
                throw v.fail("auth.domains must map a domain to a mode")
            }
            let modes = AuthenticationMode.allCases.map(\.rawValue).joined(separator: ", ")
            var out: [String: AuthenticationMode] = [:]
            for pair in pairs {
                guard let domain = pair.key, !domain.isEmpty else {
                    throw ConfigurationError("\(file.path):\(pair.keyLine): auth.domains: a domain name is needed")
                }
                guard let mode = AuthenticationMode(rawValue: pair.value ?? "") else {
                    throw ConfigurationError("\(file.path):\(pair.valueLine): auth.domains.\(domain) must be one of \(modes) (got '\(pair.value ?? "")')")
                }
                out[domain.lowercased()] = mode
            }
            c.security.authDomains = out
        }),
    ]

    /// A list of addresses or networks, each of which must parse (the error names the setting).
    static func addressSet(_ v: SettingValue, _ key: String) throws(ConfigurationError) -> [String] {
        guard let items = v.list else { throw v.fail("\(key) must be a list of addresses or networks") }
        do throws(IPAddressSetError) { _ = try IPAddressSet(items) } catch { throw v.fail("\(key): \(error)") }
        return items
    }

    // MARK: limits

    static let limits: [ConfigurationEntry] = [
        .setting(count("limits.failed_auth_per_source") { c, n in c.security.failedAuthPerSource = n }),
        .setting(count("limits.failed_auth_per_user") { c, n in c.security.failedAuthPerUser = n }),
        .setting(count("limits.failed_auth_window") { c, n in c.security.failedAuthWindow = n }),
        .setting(count("limits.block_seconds") { c, n in c.security.blockSeconds = n }),
        .setting(count("limits.registers_per_source") { c, n in c.security.registersPerSource = n }),
        .setting(count("limits.connections_per_source") { c, n in c.security.connectionsPerSource = n }),
        .setting(count("limits.tls_handshakes_per_source") { c, n in c.security.tlsHandshakesPerSource = n }),
        .setting(count("limits.max_bindings") { c, n in c.security.maxBindings = n }),
        .setting(count("limits.max_aors") { c, n in c.security.maxAORs = n }),
        .setting(.init("limits.exempt", .stringArray) { v, c throws(ConfigurationError) in
            c.security.exempt = try addressSet(v, "limits.exempt")
        }),
        .setting(.init("limits.action", .string) { v, c throws(ConfigurationError) in
            guard let a = LimitAction(rawValue: v.text) else { throw v.fail("limits.action must be reject or drop") }
            c.security.limitAction = a
        }),
    ]

    // MARK: store, node, admin, log

    static let server: [ConfigurationEntry] = [
        .setting(.init("store", env: ["SIP_REGISTRAR_STORE"], flag: "--store", .string) { v, c throws(ConfigurationError) in
            guard let s = v.string, let spec = StoreSpec(s) else {
                throw v.fail("\(v.name) must be memory, sqlite:PATH or postgres://... (got '\(v.string ?? "?")')")
            }
            c.store = spec
        }),
        .setting(.init("store_sync", env: ["SIP_REGISTRAR_STORE_SYNC"], .string) { v, c throws(ConfigurationError) in
            guard let mode = SQLiteSynchronous(rawValue: v.text) else {
                throw v.fail("\(v.name) must be full or normal (got '\(v.string ?? "?")')")
            }
            c.storeSync = mode
        }),
        // Unset stays unset: an empty value changes nothing (the default is none).
        .setting(.init("store_password_file", env: ["SIP_REGISTRAR_STORE_PASSWORD_FILE"], .string) { v, c in
            if let f = v.nonEmpty { c.storePasswordFile = f }
        }),
        .setting(.init(nil, env: ["SIP_REGISTRAR_STORE_PASSWORD", "PGPASSWORD"], .string, secret: true) { v, c in
            c.storePassword = v.text
        }),
        .setting(.init("node_name", env: ["SIP_REGISTRAR_NODE"], .string) { v, c throws(ConfigurationError) in
            if v.origin.isFile, !v.text.allSatisfy({ $0.isLetter || $0.isNumber || "-_.:".contains($0) }) {
                throw v.fail("node_name may hold letters, digits and - _ . : only")
            }
            if let n = v.nonEmpty { c.nodeName = n }
        }),
        .setting(.init("node_address", env: ["SIP_REGISTRAR_NODE_ADDRESS"], .string) { v, c throws(ConfigurationError) in
            guard let a = v.nonEmpty else { return }
            guard ConfigurationLoader.isNodeAddress(a) else {
                throw v.fail("\(v.name) must be a sip: or sips: URI without a user part, e.g. sips:node-a.example.org:5061"
                             + (v.origin.isFile ? "" : " (got '\(a)')"))
            }
            c.nodeAddress = a
        }),
        .setting(.init("admin", env: ["SIP_REGISTRAR_ADMIN"], flag: "--admin", .string) { v, c throws(ConfigurationError) in
            if v.text == "off" {
                c.admin = nil
                return
            }
            guard let a = ListenAddress(v.text) else {
                throw v.fail(v.origin.isFile ? "admin must be HOST:PORT or off (got '\(v.text)')"
                                             : "\(v.name): bad address '\(v.text)' (expected HOST:PORT or off)")
            }
            c.admin = a
        }),
        .setting(.init("admin_token_file", env: ["SIP_REGISTRAR_ADMIN_TOKEN_FILE"], .string) { v, c in
            if let f = v.nonEmpty { c.adminTokenFile = f }
        }),
        .setting(.init("log_level", env: ["SIP_REGISTRAR_LOG_LEVEL"], flag: "--log-level", .string) { v, c throws(ConfigurationError) in
            let levels = ServerConfiguration.logLevels.joined(separator: ", ")
            guard ServerConfiguration.logLevels.contains(v.text) else {
                throw v.fail("\(v.name) must be one of \(levels)" + (v.origin.isFile ? "" : " (got '\(v.text)')"))
            }
            c.logLevel = v.text
        }),
    ]
}
