import SIPMessage
import SIPLocationStores
import SIPRegistrar
import SIPTLS

/// A `host:port` a listener binds: `0.0.0.0:5060`, `[::]:5061`, `127.0.0.1:0`, or `:5060`
/// (all addresses).
package struct ListenAddress: Sendable, Hashable, CustomStringConvertible {
    package var host: String
    package var port: Int

    package init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `host:port`, `[v6]:port`, `:port` or `port`; nil when malformed.
    package init?(_ text: String) {
        var t = Substring(text.filter { $0 != " " })
        var host = "::"
        if t.hasPrefix("[") {
            guard let close = t.firstIndex(of: "]") else { return nil }
            host = String(t[t.index(after: t.startIndex)..<close])
            t = t[t.index(after: close)...]
            guard t.hasPrefix(":") else { return nil }
            t = t.dropFirst()
        } else if let colon = t.lastIndex(of: ":") {
            let h = t[..<colon]
            if !h.isEmpty {
                guard !h.contains(":") else { return nil }
                host = String(h)
            }
            t = t[t.index(after: colon)...]
        }
        guard let port = Int(t), (0...65_535).contains(port), !host.isEmpty,
              host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == ":" || $0 == "-" }) else { return nil }
        self.host = host
        self.port = port
    }

    package var description: String { SIPSource.hostPort(host, port) }
}

/// Where bindings are kept.
package enum StoreSpec: Sendable, Hashable, CustomStringConvertible {
    /// Memory only: Net::SIP's behaviour, nothing survives a restart.
    case memory
    case sqlite(path: String)
    case postgres(url: String)

    package init?(_ text: String) {
        if text == "memory" {
            self = .memory
        } else if text.hasPrefix("sqlite:"), text.count > 7 {
            self = .sqlite(path: String(text.dropFirst(7)))
        } else if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") {
            self = .postgres(url: text)
        } else {
            return nil
        }
    }

    package var description: String {
        switch self {
        case .memory: return "memory"
        case .sqlite(let p): return "sqlite:\(p)"
        case .postgres(let url):
            // Never print a password.
            guard let at = url.lastIndex(of: "@"), let slash = url.firstIndex(of: "/") else { return url }
            let start = url.index(slash, offsetBy: 2, limitedBy: at) ?? at
            if let colon = url[start..<at].firstIndex(of: ":") {
                return String(url[..<colon]) + ":***" + String(url[at...])
            }
            return url
        }
    }
}

/// The TLS identity of the listeners.
package enum CertificateSpec: Sendable, Hashable {
    /// A generated development certificate (logged loudly as such).
    case auto
    case files(certificate: String, key: String)
}

/// Everything `sip-registrar serve` runs with, after defaults, file, environment and flags.
package struct ServerConfiguration: Sendable, Hashable {
    package var udp: [ListenAddress]
    package var tcp: [ListenAddress]
    package var tls: [ListenAddress]
    /// SIP over WebSocket listeners (RFC 7118, `listen.ws`): none by default.
    package var ws: [ListenAddress] = []
    /// SIP over secure WebSocket listeners (`listen.wss`), on the TLS certificate.
    package var wss: [ListenAddress] = [ListenAddress(host: "::", port: 8443)]
    /// `listen.ws_origins`: the Origins allowed to open a WebSocket; empty: any.
    package var webSocketOrigins: [String] = []
    /// `listen.ws_max_frame`: the largest WebSocket frame accepted, in bytes.
    package var webSocketMaxFrame = 65_536
    /// `listen.spread`: process one peer's requests on every event loop (see `TransportConfiguration`).
    package var spreadAcrossLoops = true
    /// The host name or address peers reach this server at (`listen.advertise`), written in the
    /// proxy's Via and Record-Route; nil: the listener's address, or for a wildcard listener the
    /// interface address towards the peer.
    package var advertise: String?
    package var certificate: CertificateSpec
    package var keyPassphrase: String?
    package var ca: String?
    package var clientCertificates: ClientCertificateMode
    package var domains: [String]
    package var minExpires: Int
    package var maxExpires: Int
    package var defaultExpires: Int
    package var maxContacts: Int?
    package var nonRegister: NonRegisterMode
    package var store: StoreSpec
    package var admin: ListenAddress?
    package var logLevel: String
    /// Authentication and abuse limits.
    package var security = SecuritySettings()
    /// This node's name in a shared (PostgreSQL) store; nil: `HOSTNAME-PID`.
    package var nodeName: String?
    /// Where the other nodes of a shared store reach this one (`node_address`, e.g.
    /// `sips:node-a.example.org:5061`): calls for contacts whose flow this node holds are
    /// forwarded here. Nil: this node's flows are reachable only through this node.
    package var nodeAddress: String?
    /// The PostgreSQL password (from `SIP_REGISTRAR_STORE_PASSWORD`, `PGPASSWORD` or `store_password_file`).
    package var storePassword: String?
    /// A file holding the PostgreSQL password.
    package var storePasswordFile: String?
    /// SQLite durability: `full` (the default: a 200 survives a power cut) or `normal`.
    package var storeSync: SQLiteSynchronous = .full
    /// The admin API's access token file (`admin_token_file`); nil: see ``resolvedAdminTokenFile``.
    package var adminTokenFile: String?

    /// This node's name in a shared store and in its nonces: `node_name`, else `HOSTNAME-PID`.
    package var resolvedNodeName: String { nodeName ?? HostSystem.defaultNodeName() }

    /// Where the admin token is kept: `admin_token_file`, else next to an SQLite store
    /// (`sqlite:data/registrar.sqlite` → `data/admin.token`), else `data/admin.token` in the
    /// working directory (memory and PostgreSQL stores).
    package var resolvedAdminTokenFile: String {
        if let adminTokenFile { return adminTokenFile }
        if case .sqlite(let path) = store {
            guard let slash = path.lastIndex(of: "/") else { return "admin.token" }
            return String(path[...slash]) + "admin.token"
        }
        return "data/admin.token"
    }

    /// The built-in defaults (the same as config/registrar.yaml).
    package static let defaults = ServerConfiguration(
        udp: [ListenAddress(host: "::", port: 5060)], tcp: [ListenAddress(host: "::", port: 5060)],
        tls: [ListenAddress(host: "::", port: 5061)], certificate: .auto, keyPassphrase: nil, ca: nil,
        clientCertificates: .none, domains: [], minExpires: 60, maxExpires: 3600, defaultExpires: 3600, maxContacts: 10,
        nonRegister: .proxy, store: .sqlite(path: "data/registrar.sqlite"), admin: ListenAddress(host: "127.0.0.1", port: 8060),
        logLevel: "info")

    package static let logLevels = ["trace", "debug", "info", "notice", "warning", "error", "critical"]

    /// The registrar's part.
    package var registrarConfiguration: RegistrarConfiguration {
        RegistrarConfiguration(minExpires: minExpires, maxExpires: maxExpires, defaultExpires: defaultExpires, domains: domains,
                               rejectForeignDomains: !domains.isEmpty, maxContactsPerAOR: maxContacts,
                               nonRegisterMode: nonRegister, serverHeader: "sip-registrar/\(SIPRegistrarVersion.current)",
                               maxBindings: security.maxBindings == 0 ? nil : security.maxBindings,
                               maxAORs: security.maxAORs == 0 ? nil : security.maxAORs)
    }

    /// Cross-field checks; the error names the setting.
    /// The file key of each `RegistrarConfiguration` property its `validate()` may name.
    static let registrarSettings = [
        "minExpires": "registrar.min_expires", "maxExpires": "registrar.max_expires", "defaultExpires": "registrar.default_expires",
        "maxContactsPerAOR": "registrar.max_contacts", "maxBindings": "limits.max_bindings", "maxAORs": "limits.max_aors",
        "domains": "registrar.domains",
    ]

    package func validate() throws(ConfigurationError) {
        if minExpires > maxExpires {
            // Two settings: the sentence names both, whichever was given.
            throw ConfigurationError("min-expires (\(minExpires)) is greater than max-expires (\(maxExpires))")
        }
        do throws(RegistrarConfigurationError) {
            try registrarConfiguration.validate()
        } catch {
            guard let key = error.property.flatMap({ Self.registrarSettings[$0] }) else { throw ConfigurationError(error.description) }
            throw ConfigurationError(error.description, setting: key, reason: error.description)
        }
        if case .postgres(let url) = store, PostgresLocation(url: url) == nil {
            throw ConfigurationError("store \(store): not a PostgreSQL URL (expected postgres://USER@HOST:PORT/DB[?sslmode=disable|prefer|require])")
        }
        if udp.isEmpty && tcp.isEmpty && tls.isEmpty { throw ConfigurationError("no listener configured (udp, tcp, tls)") }
        if clientCertificates != .none && ca == nil {
            throw ConfigurationError("--client-certs \(clientCertificates.rawValue) needs --ca FILE")
        }
        try security.validate(clientCertificates: clientCertificates)
        if !Self.logLevels.contains(logLevel) {
            throw ConfigurationError("log level '\(logLevel)' is not one of \(Self.logLevels.joined(separator: ", "))")
        }
    }
}

package enum SIPRegistrarVersion {
    package static let current = "0.1.0"
}

/// A configuration problem, as one line naming the flag, key, or file and line.
package struct ConfigurationError: Error, Sendable, CustomStringConvertible, Equatable {
    package var description: String
    /// The settings at fault by file key (`registrar.min_expires`) when a `validate()` knows them:
    /// the loader then puts where the first one given came from (file and line, variable, flag) first.
    package var settings: [String] = []
    /// The sentence without any prefix, for the loader to put after where the value came from.
    package var reason: String

    package init(_ description: String) {
        self.description = description
        self.reason = description
    }

    /// An error about one setting: `description` as shown when nobody knows where the value came
    /// from, `reason` to follow the place when the loader does.
    package init(_ description: String, setting: String..., reason: String) {
        self.description = description
        self.settings = setting
        self.reason = reason
    }

    /// Errors are the same when they read the same.
    package static func == (a: ConfigurationError, b: ConfigurationError) -> Bool { a.description == b.description }
}
