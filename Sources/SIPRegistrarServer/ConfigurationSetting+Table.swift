import Configuration
import SIPMessage
import SIPRegistrar
import SIPTLS

extension ConfigurationSetting {
    /// Every setting of `sip-registrar serve`: file key, environment variables, flag, type and
    /// parser. The file accepts exactly these keys; defaults are ``ServerConfiguration/defaults``.
    /// Range and cross-field checks are not here but in each module's `validate()`.
    static let all: [ConfigurationEntry] = listen + tls + registrar + auth + limits + server

    /// The sections of the file, with the message when one is not a mapping.
    static let sections: [String: String] = [
        "listen": "'listen' must be a mapping of udp, tcp, tls", "tls": "'tls' must be a mapping",
        "registrar": "'registrar' must be a mapping", "auth": "'auth' must be a mapping", "limits": "'limits' must be a mapping",
    ]

    /// The keys the file may hold.
    static let fileKeys: Set<String> = Set(all.flatMap(\.settings).compactMap(\.key))

    // MARK: listen

    static let listen: [ConfigurationEntry] = [
        // At the environment and the flags, giving one kind of listener drops the kinds not given.
        .group(ConfigurationGroup(members: [
            listener("listen.udp", "SIP_REGISTRAR_UDP", "--udp"), listener("listen.tcp", "SIP_REGISTRAR_TCP", "--tcp"),
            listener("listen.tls", "SIP_REGISTRAR_TLS", "--tls"), listener("listen.ws", "SIP_REGISTRAR_WS", "--ws"),
            listener("listen.wss", "SIP_REGISTRAR_WSS", "--wss"),
        ]) { values, c throws(ConfigurationError) in
            var lists: [[ListenAddress]?] = []
            for v in values { lists.append(try v.map { v throws(ConfigurationError) in try addresses(v) }) }
            let replaceAll = values.contains { $0 != nil && !($0?.origin.isFile ?? false) }
            let paths: [WritableKeyPath<ServerConfiguration, [ListenAddress]>] = [\.udp, \.tcp, \.tls, \.ws, \.wss]
            for (path, list) in zip(paths, lists) where list != nil || replaceAll { c[keyPath: path] = list ?? [] }
        }),
        .setting(.init("listen.ws_origins", .stringArray) { v, c throws(ConfigurationError) in
            guard let items = v.list else { throw v.fail("listen.ws_origins must be a list of origins") }
            for (i, o) in items.enumerated() where !(o.hasPrefix("http://") || o.hasPrefix("https://")) {
                throw v.fail(item: i, "listen.ws_origins: an origin is scheme://host[:port], e.g. https://phone.example.com")
            }
            c.webSocketOrigins = items
        }),
        .setting(.init("listen.ws_max_frame", .int) { v, c throws(ConfigurationError) in
            guard let n = v.int, n >= 1_024, n <= 16_777_216 else {
                throw v.fail("listen.ws_max_frame must be a whole number of bytes from 1024 to 16777216")
            }
            c.webSocketMaxFrame = n
        }),
        .setting(.init("listen.spread", .bool) { v, c throws(ConfigurationError) in
            guard let b = v.bool else { throw v.fail("listen.spread must be true or false") }
            c.spreadAcrossLoops = b
        }),
        .setting(.init("listen.advertise", env: ["SIP_REGISTRAR_ADVERTISE"], flag: "--advertise", .string) { v, c throws(ConfigurationError) in
            guard ConfigurationLoader.isHostName(v.text) else {
                throw v.fail("\(v.name) must be a host name or an IP address" + (v.origin.isFile ? "" : " (got '\(v.text)')"))
            }
            c.advertise = v.text
        }),
    ]

    static func listener(_ key: String, _ variable: String, _ flag: String) -> ConfigurationSetting {
        .init(key, env: [variable], flag: flag, .stringArray, scalarIsList: true) { _, _ in }
    }

    /// `HOST:PORT` items; the error names the bad item.
    static func addresses(_ v: SettingValue) throws(ConfigurationError) -> [ListenAddress] {
        guard let items = v.list else { throw v.fail("\(v.name): bad address '' (expected HOST:PORT)") }
        var out: [ListenAddress] = []
        for (i, s) in items.enumerated() {
            guard let a = ListenAddress(s) else { throw v.fail(item: i, "\(v.name): bad address '\(s)' (expected HOST:PORT)") }
            out.append(a)
        }
        return out
    }

    // MARK: tls

    static let tls: [ConfigurationEntry] = [
        .group(ConfigurationGroup(members: [
            .init("tls.certificate", env: ["SIP_REGISTRAR_CERT"], flag: "--cert", .string) { _, _ in },
            .init("tls.key", env: ["SIP_REGISTRAR_KEY"], flag: "--key", .string) { _, _ in },
        ]) { values, c throws(ConfigurationError) in
            let (cert, key) = (values[0], values[1])
            if let cert, cert.origin.isFile {
                // In the file, "auto" or an empty certificate is the development one; a key alone changes nothing.
                if cert.text == "auto" || cert.text.isEmpty {
                    c.certificate = .auto
                } else {
                    guard let keyFile = key?.nonEmpty else { throw cert.fail(section: "tls", "tls.certificate needs tls.key") }
                    c.certificate = .files(certificate: cert.text, key: keyFile)
                }
                return
            }
            if cert == nil, key?.origin.isFile == true { return }
            switch (cert?.text, key?.text) {
            case (let certFile?, let keyFile?): c.certificate = certFile == "auto" ? .auto : .files(certificate: certFile, key: keyFile)
            case ("auto"?, nil): c.certificate = .auto
            case (_?, nil): throw ConfigurationError("\(cert?.name ?? "") needs \(counterpart(of: cert, "SIP_REGISTRAR_KEY", "--key"))")
            case (nil, _): throw ConfigurationError("\(key?.name ?? "") needs \(counterpart(of: key, "SIP_REGISTRAR_CERT", "--cert"))")
            }
        }),
        .setting(.init("tls.key_passphrase", env: ["SIP_REGISTRAR_KEY_PASSPHRASE"], .string, secret: true) { v, c in
            c.keyPassphrase = v.origin.isFile ? v.nonEmpty : v.text
        }),
        .setting(.init("tls.ca", env: ["SIP_REGISTRAR_CA"], flag: "--ca", .string) { v, c in
            c.ca = v.origin.isFile ? v.nonEmpty : v.text
        }),
        .setting(.init("tls.client_certificates", env: ["SIP_REGISTRAR_CLIENT_CERTS"], flag: "--client-certs", .string) {
            v, c throws(ConfigurationError) in
            guard let mode = ClientCertificateMode(rawValue: v.text) else {
                throw v.fail("\(v.name) must be none, optional or required (got '\(v.text)')")
            }
            c.clientCertificates = mode
        }),
    ]

    /// The other member of a pair, named as at the value's origin (`environment SIP_REGISTRAR_KEY`, `--key`).
    static func counterpart(of v: SettingValue?, _ variable: String, _ flag: String) -> String {
        if case .environment = v?.origin { return "environment \(variable)" }
        return flag
    }

    // MARK: registrar

    static let registrar: [ConfigurationEntry] = [
        .setting(.init("registrar.domains", env: ["SIP_REGISTRAR_DOMAINS"], flag: "--domain", .stringArray) { v, c throws(ConfigurationError) in
            guard let items = v.list else { throw v.fail("registrar.domains must be a list") }
            c.domains = items
        }),
        .setting(.init("registrar.non_register", .string) { v, c throws(ConfigurationError) in
            guard let mode = NonRegisterMode(rawValue: v.text) else {
                throw v.fail("registrar.non_register must be proxy, redirect, rewrite or ignore")
            }
            c.nonRegister = mode
        }),
        .setting(count("registrar.min_expires", env: "SIP_REGISTRAR_MIN_EXPIRES", flag: "--min-expires") { c, n in c.minExpires = n }),
        .setting(count("registrar.max_expires", env: "SIP_REGISTRAR_MAX_EXPIRES", flag: "--max-expires") { c, n in c.maxExpires = n }),
        .setting(count("registrar.default_expires") { c, n in c.defaultExpires = n }),
        .setting(count("registrar.max_contacts") { c, n in c.maxContacts = n == 0 ? nil : n }),
    ]

    /// A whole number ≥ 0 in the file; the environment and the flags give any whole number, which
    /// the module's `validate()` checks.
    static func count(_ key: String, env: String? = nil, flag: String? = nil,
                      set: @escaping @Sendable (inout ServerConfiguration, Int) -> Void) -> ConfigurationSetting {
        .init(key, env: env.map { [$0] } ?? [], flag: flag, .int) { v, c throws(ConfigurationError) in
            guard let n = v.int, n >= 0 || !v.origin.isFile else { throw v.fail("\(key) must be a whole number ≥ 0") }
            set(&c, n)
        }
    }
}
