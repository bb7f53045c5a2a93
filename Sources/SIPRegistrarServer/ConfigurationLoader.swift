import SIPLocationStores
import SIPMessage
import SIPRegistrar
import SIPTLS
import Yams

#if canImport(Glibc)
import Glibc
#endif

/// Values given on the command line; nil means "not given".
public struct ConfigurationOverrides: Sendable {
    public var udp: [String]?
    public var tcp: [String]?
    public var tls: [String]?
    public var ws: [String]?
    public var wss: [String]?
    public var cert: String?
    public var key: String?
    public var ca: String?
    public var clientCerts: String?
    public var domains: [String]?
    public var minExpires: Int?
    public var maxExpires: Int?
    public var store: String?
    public var admin: String?
    public var logLevel: String?
    public var auth: String?
    public var users: String?
    public var advertise: String?

    public init() {}
}

/// Builds the configuration: built-in defaults < config file < environment
/// (`SIP_REGISTRAR_…`) < flags. Listener flags replace the configured list.
public enum ConfigurationLoader {
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

    /// The keys the file may hold, by section.
    static let schema: [String: Set<String>] = [
        "": ["listen", "tls", "registrar", "store", "store_password_file", "store_sync", "node_name", "node_address", "admin", "admin_token_file",
             "log_level", "auth", "limits"],
        "auth": ["mode", "users", "domains", "realm", "nonce_lifetime", "secret_file", "trusted", "algorithms"],
        "limits": ["failed_auth_per_source", "failed_auth_per_user", "failed_auth_window", "block_seconds",
                   "registers_per_source", "connections_per_source", "tls_handshakes_per_source", "exempt", "action",
                   "max_bindings", "max_aors"],
        "listen": ["udp", "tcp", "tls", "ws", "wss", "ws_origins", "ws_max_frame", "spread", "advertise"],
        "tls": ["certificate", "key", "key_passphrase", "ca", "client_certificates"],
        "registrar": ["domains", "min_expires", "max_expires", "default_expires", "max_contacts", "non_register"],
    ]

    public static func load(file: String?, environment: [String: String], overrides: ConfigurationOverrides) throws(ConfigurationError) -> ServerConfiguration {
        var c = ServerConfiguration.defaults
        if let file { try apply(file: file, to: &c) }
        try apply(environment: environment, to: &c)
        try apply(overrides: overrides, to: &c)
        if c.storePassword == nil, let f = c.storePasswordFile {
            guard let text = readFile(f) else { throw ConfigurationError("store_password_file \(f): cannot read it") }
            c.storePassword = String(text.split(separator: "\n", omittingEmptySubsequences: false).first ?? "")
        }
        try c.validate()
        return c
    }

    /// What a client of the admin API on this machine (`sip-registrar lookup`) needs: the
    /// configuration file and environment read as `serve` reads them, without the checks that
    /// only matter to a server.
    public static func loadForClient(file: String?, environment: [String: String]) throws(ConfigurationError) -> ServerConfiguration {
        var c = ServerConfiguration.defaults
        if let file { try apply(file: file, to: &c) }
        try apply(environment: environment, to: &c)
        return c
    }

    // MARK: File

    static func apply(file path: String, to c: inout ServerConfiguration) throws(ConfigurationError) {
        guard let text = readFile(path) else { throw ConfigurationError("\(path): cannot read the configuration file") }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigurationError("\(path): \(yamlErrorText(error))")
        } catch {
            throw ConfigurationError("\(path): \(error)")
        }
        guard let root else { return }  // an empty file changes nothing
        guard let top = root.mapping else { throw ConfigurationError("\(path):\(line(root)): expected a mapping of settings") }
        func fail(_ node: Node, _ message: String) -> ConfigurationError {
            ConfigurationError("\(path):\(line(node)): \(message)")
        }
        for (k, v) in top {
            guard let key = k.string, schema[""]!.contains(key) else {
                throw fail(k, "unknown key '\(k.string ?? "?")'")
            }
            switch key {
            case "listen":
                guard let m = v.mapping else { throw fail(v, "'listen' must be a mapping of udp, tcp, tls") }
                for (lk, lv) in m {
                    guard let name = lk.string, schema["listen"]!.contains(name) else {
                        throw fail(lk, "unknown key 'listen.\(lk.string ?? "?")'")
                    }
                    if name == "advertise" {
                        let text = lv.string ?? ""
                        guard Self.isHostName(text) else { throw fail(lv, "listen.advertise must be a host name or an IP address") }
                        c.advertise = text
                        continue
                    }
                    if name == "spread" {
                        guard let b = lv.bool else { throw fail(lv, "listen.spread must be true or false") }
                        c.spreadAcrossLoops = b
                        continue
                    }
                    if name == "ws_origins" {
                        guard let seq = lv.sequence else { throw fail(lv, "listen.ws_origins must be a list of origins") }
                        var origins: [String] = []
                        for item in seq {
                            guard let o = item.string, o.hasPrefix("http://") || o.hasPrefix("https://") else {
                                throw fail(item, "listen.ws_origins: an origin is scheme://host[:port], e.g. https://phone.example.com")
                            }
                            origins.append(o)
                        }
                        c.webSocketOrigins = origins
                        continue
                    }
                    if name == "ws_max_frame" {
                        guard let n = lv.int, n >= 1_024, n <= 16_777_216 else {
                            throw fail(lv, "listen.ws_max_frame must be a whole number of bytes from 1024 to 16777216")
                        }
                        c.webSocketMaxFrame = n
                        continue
                    }
                    let list = try addresses(lv, key: "listen.\(name)", fail: fail)
                    switch name {
                    case "udp": c.udp = list
                    case "tcp": c.tcp = list
                    case "ws": c.ws = list
                    case "wss": c.wss = list
                    default: c.tls = list
                    }
                }
            case "tls":
                guard let m = v.mapping else { throw fail(v, "'tls' must be a mapping") }
                var cert: String?
                var keyFile: String?
                for (tk, tv) in m {
                    guard let name = tk.string, schema["tls"]!.contains(name) else {
                        throw fail(tk, "unknown key 'tls.\(tk.string ?? "?")'")
                    }
                    let s = tv.string ?? ""
                    switch name {
                    case "certificate": cert = s
                    case "key": keyFile = s.isEmpty ? nil : s
                    case "key_passphrase": c.keyPassphrase = s.isEmpty ? nil : s
                    case "ca": c.ca = s.isEmpty ? nil : s
                    default:
                        guard let mode = ClientCertificateMode(rawValue: s) else {
                            throw fail(tv, "tls.client_certificates must be none, optional or required (got '\(s)')")
                        }
                        c.clientCertificates = mode
                    }
                }
                if let cert {
                    if cert == "auto" || cert.isEmpty {
                        c.certificate = .auto
                    } else {
                        guard let keyFile else { throw fail(v, "tls.certificate needs tls.key") }
                        c.certificate = .files(certificate: cert, key: keyFile)
                    }
                }
            case "registrar":
                guard let m = v.mapping else { throw fail(v, "'registrar' must be a mapping") }
                for (rk, rv) in m {
                    guard let name = rk.string, schema["registrar"]!.contains(name) else {
                        throw fail(rk, "unknown key 'registrar.\(rk.string ?? "?")'")
                    }
                    switch name {
                    case "domains":
                        guard let seq = rv.sequence else { throw fail(rv, "registrar.domains must be a list") }
                        c.domains = seq.compactMap(\.string)
                    case "non_register":
                        guard let mode = NonRegisterMode(rawValue: rv.string ?? "") else {
                            throw fail(rv, "registrar.non_register must be proxy, redirect, rewrite or ignore")
                        }
                        c.nonRegister = mode
                    default:
                        guard let n = rv.int, n >= 0 else { throw fail(rv, "registrar.\(name) must be a whole number ≥ 0") }
                        switch name {
                        case "min_expires": c.minExpires = n
                        case "max_expires": c.maxExpires = n
                        case "default_expires": c.defaultExpires = n
                        default: c.maxContacts = n == 0 ? nil : n
                        }
                    }
                }
            case "auth":
                try applyAuth(v, to: &c.security, fail: fail)
            case "limits":
                try applyLimits(v, to: &c.security, fail: fail)
            case "store_password_file":
                let text = v.string ?? ""
                c.storePasswordFile = text.isEmpty ? nil : text
            case "store_sync":
                guard let mode = SQLiteSynchronous(rawValue: v.string ?? "") else {
                    throw fail(v, "store_sync must be full or normal (got '\(v.string ?? "?")')")
                }
                c.storeSync = mode
            case "admin_token_file":
                let text = v.string ?? ""
                c.adminTokenFile = text.isEmpty ? nil : text
            case "node_address":
                let text = v.string ?? ""
                guard text.isEmpty || Self.isNodeAddress(text) else {
                    throw fail(v, "node_address must be a sip: or sips: URI without a user part, e.g. sips:node-a.example.org:5061")
                }
                c.nodeAddress = text.isEmpty ? nil : text
            case "node_name":
                let text = v.string ?? ""
                guard text.allSatisfy({ $0.isLetter || $0.isNumber || "-_.:".contains($0) }) else {
                    throw fail(v, "node_name may hold letters, digits and - _ . : only")
                }
                c.nodeName = text.isEmpty ? nil : text
            case "store":
                guard let s = v.string, let spec = StoreSpec(s) else {
                    throw fail(v, "store must be memory, sqlite:PATH or postgres://... (got '\(v.string ?? "?")')")
                }
                c.store = spec
            case "admin":
                let s = v.string ?? ""
                if s == "off" {
                    c.admin = nil
                } else {
                    guard let a = ListenAddress(s) else { throw fail(v, "admin must be HOST:PORT or off (got '\(s)')") }
                    c.admin = a
                }
            default:
                c.logLevel = v.string ?? ""
                guard ServerConfiguration.logLevels.contains(c.logLevel) else {
                    throw fail(v, "log_level must be one of \(ServerConfiguration.logLevels.joined(separator: ", "))")
                }
            }
        }
    }

    static func applyAuth(_ v: Node, to s: inout SecuritySettings, fail: (Node, String) -> ConfigurationError) throws(ConfigurationError) {
        guard let m = v.mapping else { throw fail(v, "'auth' must be a mapping") }
        let modes = AuthenticationMode.allCases.map(\.rawValue).joined(separator: ", ")
        for (k, value) in m {
            guard let name = k.string, schema["auth"]!.contains(name) else { throw fail(k, "unknown key 'auth.\(k.string ?? "?")'") }
            switch name {
            case "mode":
                let text = value.string ?? ""
                if text.isEmpty {
                    s.auth = nil
                } else {
                    guard let mode = AuthenticationMode(rawValue: text) else { throw fail(value, "auth.mode must be one of \(modes) (got '\(text)')") }
                    s.auth = mode
                }
            case "users":
                let text = value.string ?? ""
                s.users = text.isEmpty ? nil : text
            case "secret_file":
                let text = value.string ?? ""
                s.secretFile = text.isEmpty ? nil : text
            case "realm":
                let text = value.string ?? ""
                s.realm = text.isEmpty ? nil : text
            case "nonce_lifetime":
                guard let n = value.int, n > 0 else { throw fail(value, "auth.nonce_lifetime must be a positive number of seconds") }
                s.nonceLifetime = n
            case "algorithms":
                let names = DigestAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")
                guard let seq = value.sequence, !seq.isEmpty else {
                    throw fail(value, "auth.algorithms must be a non-empty list of \(names)")
                }
                var list: [DigestAlgorithm] = []
                for item in seq {
                    guard let a = item.string.flatMap({ DigestAlgorithm(token: $0) }) else {
                        throw fail(item, "auth.algorithms: unknown algorithm '\(item.string ?? "?")' (expected \(names))")
                    }
                    guard !list.contains(a) else { throw fail(item, "auth.algorithms: \(a.rawValue) is listed twice") }
                    list.append(a)
                }
                s.algorithms = list
            case "trusted":
                guard let seq = value.sequence else { throw fail(value, "auth.trusted must be a list of addresses or networks") }
                s.trusted = seq.compactMap(\.string)
                do throws(IPAddressSetError) { _ = try IPAddressSet(s.trusted) } catch { throw fail(value, "auth.trusted: \(error)") }
            default:
                guard let dm = value.mapping else { throw fail(value, "auth.domains must map a domain to a mode") }
                var out: [String: AuthenticationMode] = [:]
                for (dk, dv) in dm {
                    guard let domain = dk.string, !domain.isEmpty else { throw fail(dk, "auth.domains: a domain name is needed") }
                    guard let mode = AuthenticationMode(rawValue: dv.string ?? "") else {
                        throw fail(dv, "auth.domains.\(domain) must be one of \(modes) (got '\(dv.string ?? "")')")
                    }
                    out[domain.lowercased()] = mode
                }
                s.authDomains = out
            }
        }
    }

    static func applyLimits(_ v: Node, to s: inout SecuritySettings, fail: (Node, String) -> ConfigurationError) throws(ConfigurationError) {
        guard let m = v.mapping else { throw fail(v, "'limits' must be a mapping") }
        for (k, value) in m {
            guard let name = k.string, schema["limits"]!.contains(name) else { throw fail(k, "unknown key 'limits.\(k.string ?? "?")'") }
            switch name {
            case "exempt":
                guard let seq = value.sequence else { throw fail(value, "limits.exempt must be a list of addresses or networks") }
                s.exempt = seq.compactMap(\.string)
                do throws(IPAddressSetError) { _ = try IPAddressSet(s.exempt) } catch { throw fail(value, "limits.exempt: \(error)") }
            case "action":
                guard let a = LimitAction(rawValue: value.string ?? "") else { throw fail(value, "limits.action must be reject or drop") }
                s.limitAction = a
            default:
                guard let n = value.int, n >= 0 else { throw fail(value, "limits.\(name) must be a whole number ≥ 0") }
                switch name {
                case "failed_auth_per_source": s.failedAuthPerSource = n
                case "failed_auth_per_user": s.failedAuthPerUser = n
                case "failed_auth_window":
                    guard n > 0 else { throw fail(value, "limits.failed_auth_window must be positive") }
                    s.failedAuthWindow = n
                case "block_seconds": s.blockSeconds = n
                case "registers_per_source": s.registersPerSource = n
                case "connections_per_source": s.connectionsPerSource = n
                case "max_bindings": s.maxBindings = n
                case "max_aors": s.maxAORs = n
                default: s.tlsHandshakesPerSource = n
                }
            }
        }
    }

    static func addresses(_ node: Node, key: String, fail: (Node, String) -> ConfigurationError) throws(ConfigurationError) -> [ListenAddress] {
        let items: [Node]
        if let seq = node.sequence { items = Array(seq) } else { items = [node] }
        var out: [ListenAddress] = []
        for n in items {
            let s = n.string ?? ""
            guard let a = ListenAddress(s) else { throw fail(n, "\(key): bad address '\(s)' (expected HOST:PORT)") }
            out.append(a)
        }
        return out
    }

    static func line(_ node: Node) -> Int { node.mark?.line ?? 0 }

    static func yamlErrorText(_ e: YamlError) -> String {
        switch e {
        case .scanner(_, let problem, let mark, _), .parser(_, let problem, let mark, _):
            return "\(mark.line): \(problem)"
        default:
            return "\(e)"
        }
    }

    // MARK: Environment

    static func apply(environment env: [String: String], to c: inout ServerConfiguration) throws(ConfigurationError) {
        var o = ConfigurationOverrides()
        func list(_ k: String) -> [String]? { env[k].map { $0.split(separator: ",").map(String.init) } }
        func int(_ k: String) throws(ConfigurationError) -> Int? {
            guard let v = env[k] else { return nil }
            guard let n = Int(v) else { throw ConfigurationError("environment \(k)='\(v)' is not a number") }
            return n
        }
        o.udp = list("SIP_REGISTRAR_UDP")
        o.tcp = list("SIP_REGISTRAR_TCP")
        o.tls = list("SIP_REGISTRAR_TLS")
        o.ws = list("SIP_REGISTRAR_WS")
        o.wss = list("SIP_REGISTRAR_WSS")
        o.cert = env["SIP_REGISTRAR_CERT"]
        o.key = env["SIP_REGISTRAR_KEY"]
        o.ca = env["SIP_REGISTRAR_CA"]
        o.clientCerts = env["SIP_REGISTRAR_CLIENT_CERTS"]
        o.domains = list("SIP_REGISTRAR_DOMAINS")
        o.minExpires = try int("SIP_REGISTRAR_MIN_EXPIRES")
        o.maxExpires = try int("SIP_REGISTRAR_MAX_EXPIRES")
        o.store = env["SIP_REGISTRAR_STORE"]
        o.admin = env["SIP_REGISTRAR_ADMIN"]
        o.logLevel = env["SIP_REGISTRAR_LOG_LEVEL"]
        o.auth = env["SIP_REGISTRAR_AUTH"]
        o.users = env["SIP_REGISTRAR_USERS"]
        o.advertise = env["SIP_REGISTRAR_ADVERTISE"]
        if let p = env["SIP_REGISTRAR_KEY_PASSPHRASE"] { c.keyPassphrase = p }
        if let n = env["SIP_REGISTRAR_NODE"], !n.isEmpty { c.nodeName = n }
        if let a = env["SIP_REGISTRAR_NODE_ADDRESS"], !a.isEmpty {
            guard isNodeAddress(a) else {
                throw ConfigurationError("SIP_REGISTRAR_NODE_ADDRESS must be a sip: or sips: URI without a user part (got '\(a)')")
            }
            c.nodeAddress = a
        }
        if let f = env["SIP_REGISTRAR_STORE_PASSWORD_FILE"], !f.isEmpty { c.storePasswordFile = f }
        if let f = env["SIP_REGISTRAR_ADMIN_TOKEN_FILE"], !f.isEmpty { c.adminTokenFile = f }
        if let m = env["SIP_REGISTRAR_STORE_SYNC"] {
            guard let mode = SQLiteSynchronous(rawValue: m) else {
                throw ConfigurationError("environment SIP_REGISTRAR_STORE_SYNC must be full or normal (got '\(m)')")
            }
            c.storeSync = mode
        }
        c.storePassword = env["SIP_REGISTRAR_STORE_PASSWORD"] ?? env["PGPASSWORD"]
        try apply(overrides: o, to: &c, origin: "environment SIP_REGISTRAR_")
    }

    // MARK: Flags

    static func apply(overrides o: ConfigurationOverrides, to c: inout ServerConfiguration, origin: String = "--") throws(ConfigurationError) {
        func name(_ flag: String) -> String {
            origin == "--" ? "--\(flag)" : origin + flag.uppercased().replacingDashes()
        }
        func addresses(_ list: [String]?, _ flag: String) throws(ConfigurationError) -> [ListenAddress]? {
            guard let list else { return nil }
            var out: [ListenAddress] = []
            for s in list {
                guard let a = ListenAddress(s) else { throw ConfigurationError("\(name(flag)): bad address '\(s)' (expected HOST:PORT)") }
                out.append(a)
            }
            return out
        }
        // Listener flags replace the configured lists; giving one kind drops the kinds not given.
        let u = try addresses(o.udp, "udp"), t = try addresses(o.tcp, "tcp"), s = try addresses(o.tls, "tls")
        let w = try addresses(o.ws, "ws"), ws = try addresses(o.wss, "wss")
        if u != nil || t != nil || s != nil || w != nil || ws != nil {
            c.udp = u ?? []
            c.tcp = t ?? []
            c.tls = s ?? []
            c.ws = w ?? []
            c.wss = ws ?? []
        }
        switch (o.cert, o.key) {
        case (nil, nil): break
        case (let cert?, let key?): c.certificate = cert == "auto" ? .auto : .files(certificate: cert, key: key)
        case ("auto"?, nil): c.certificate = .auto
        case (_?, nil): throw ConfigurationError("\(name("cert")) needs \(name("key"))")
        case (nil, _?): throw ConfigurationError("\(name("key")) needs \(name("cert"))")
        }
        if let a = o.advertise {
            guard isHostName(a) else { throw ConfigurationError("\(name("advertise")) must be a host name or an IP address (got '\(a)')") }
            c.advertise = a
        }
        if let ca = o.ca { c.ca = ca }
        if let m = o.clientCerts {
            guard let mode = ClientCertificateMode(rawValue: m) else {
                throw ConfigurationError("\(name("client-certs")) must be none, optional or required (got '\(m)')")
            }
            c.clientCertificates = mode
        }
        if let d = o.domains { c.domains = d }
        if let n = o.minExpires {
            guard n >= 0 else { throw ConfigurationError("\(name("min-expires")) must not be negative") }
            c.minExpires = n
        }
        if let n = o.maxExpires {
            guard n > 0 else { throw ConfigurationError("\(name("max-expires")) must be positive") }
            c.maxExpires = n
        }
        if let st = o.store {
            guard let spec = StoreSpec(st) else {
                throw ConfigurationError("\(name("store")) must be memory, sqlite:PATH or postgres://... (got '\(st)')")
            }
            c.store = spec
        }
        if let a = o.admin {
            if a == "off" {
                c.admin = nil
            } else {
                guard let addr = ListenAddress(a) else { throw ConfigurationError("\(name("admin")): bad address '\(a)' (expected HOST:PORT or off)") }
                c.admin = addr
            }
        }
        if let a = o.auth {
            guard let mode = AuthenticationMode(rawValue: a) else {
                throw ConfigurationError("\(name("auth")) must be one of \(AuthenticationMode.allCases.map(\.rawValue).joined(separator: ", ")) (got '\(a)')")
            }
            c.security.auth = mode
        }
        if let u = o.users { c.security.users = u.isEmpty ? nil : u }
        if let l = o.logLevel {
            guard ServerConfiguration.logLevels.contains(l) else {
                throw ConfigurationError("\(name("log-level")) must be one of \(ServerConfiguration.logLevels.joined(separator: ", ")) (got '\(l)')")
            }
            c.logLevel = l
        }
    }

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

extension String {
    func replacingDashes() -> String { String(map { $0 == "-" ? "_" : $0 }) }
}
