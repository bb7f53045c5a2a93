import Foundation
import SIPRegistrar
@testable import SIPRegistrarServer
import SIPTestSupport
import Testing

/// `limits.max_bindings` and `limits.max_aors` reach the registrar; bad values name the line.
@Suite struct LocationLimitsConfigTests {
    func load(_ yaml: String) throws(ConfigurationError) -> ServerConfiguration {
        let path = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString).yaml"
        try? yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try ConfigurationLoader.load(file: path, environment: [:], overrides: ConfigurationOverrides())
    }

    @Test func defaultsBoundTheLocationService() throws {
        let c = try load("log_level: info\n").registrarConfiguration
        #expect(c.maxBindings == RegistrarConfiguration.defaultMaxBindings)
        #expect(c.maxAORs == RegistrarConfiguration.defaultMaxBindings)
    }

    @Test func configuredLimitsAndZeroForNone() throws {
        let c = try load("limits:\n  max_bindings: 10\n  max_aors: 0\n").registrarConfiguration
        #expect(c.maxBindings == 10)
        #expect(c.maxAORs == nil)
    }

    @Test func aNegativeLimitNamesTheKeyAndLine() {
        do {
            _ = try load("limits:\n  max_bindings: -1\n")
            Issue.record("accepted a negative max_bindings")
        } catch {
            #expect(error.description.hasSuffix(":2: limits.max_bindings must be a whole number ≥ 0"), "\(error)")
        }
    }
}

/// `listen.spread` turns on the spreading of one peer's requests across event loops.
@Suite struct SpreadConfigTests {
    @Test func spreadIsOnByDefaultAndReadFromTheFile() throws {
        let path = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString).yaml"
        try "listen:\n  spread: false\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try !ConfigurationLoader.load(file: path, environment: [:], overrides: ConfigurationOverrides()).spreadAcrossLoops)
        #expect(ServerConfiguration.defaults.spreadAcrossLoops)
        try "listen:\n  spread: sometimes\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(file: path, environment: [:], overrides: ConfigurationOverrides())
        }
    }
}

/// The proxy is the default for requests other than REGISTER; `listen.advertise` names us.
@Suite struct ProxyConfigTests {
    func load(_ yaml: String, env: [String: String] = [:], overrides: ConfigurationOverrides = .init()) throws(ConfigurationError)
        -> ServerConfiguration {
        let path = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString).yaml"
        try? yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return try ConfigurationLoader.load(file: path, environment: env, overrides: overrides)
    }

    @Test func proxyIsTheDefaultAndTheOtherModesStay() throws {
        #expect(try load("log_level: info\n").nonRegister == .proxy)
        for mode in ["redirect", "rewrite", "ignore", "proxy"] {
            #expect(try load("registrar:\n  non_register: \(mode)\n").nonRegister.rawValue == mode)
        }
        do {
            _ = try load("registrar:\n  non_register: relay\n")
            Issue.record("accepted an unknown mode")
        } catch {
            #expect(error.description.hasSuffix(":2: registrar.non_register must be proxy, redirect, rewrite or ignore"), "\(error)")
        }
    }

    @Test func nodeAddressFromFileAndEnvironment() throws {
        #expect(try load("log_level: info\n").nodeAddress == nil)
        #expect(try load("node_address: \"sips:node-a.example.org:5061\"\n").nodeAddress == "sips:node-a.example.org:5061")
        #expect(try load("", env: ["SIP_REGISTRAR_NODE_ADDRESS": "sip:10.0.0.5;transport=tcp"]).nodeAddress
                == "sip:10.0.0.5;transport=tcp")
        do {
            _ = try load("node_address: \"sip:alice@node-a.example.org\"\n")
            Issue.record("accepted a user part")
        } catch {
            #expect(error.description.contains(":1: node_address must be a sip: or sips: URI without a user part"), "\(error)")
        }
        do {
            _ = try load("", env: ["SIP_REGISTRAR_NODE_ADDRESS": "node-a:5061"])
            Issue.record("accepted a bare host")
        } catch {
            #expect(error.description.contains("SIP_REGISTRAR_NODE_ADDRESS must be a sip: or sips: URI"), "\(error)")
        }
    }

    @Test func advertiseFromFileEnvironmentAndFlag() throws {
        #expect(try load("log_level: info\n").advertise == nil)
        #expect(try load("listen:\n  advertise: sip.example.com\n").advertise == "sip.example.com")
        #expect(try load("", env: ["SIP_REGISTRAR_ADVERTISE": "[2001:db8::1]"]).advertise == "[2001:db8::1]")
        var o = ConfigurationOverrides()
        o.advertise = "198.51.100.7"
        #expect(try load("listen:\n  advertise: sip.example.com\n", overrides: o).advertise == "198.51.100.7")
        do {
            _ = try load("listen:\n  advertise: \"bad host\"\n")
            Issue.record("accepted a host with a space")
        } catch {
            #expect(error.description.hasSuffix(":2: listen.advertise must be a host name or an IP address"), "\(error)")
        }
        o.advertise = "a;b"
        do {
            _ = try load("", overrides: o)
            Issue.record("accepted a host with a semicolon")
        } catch {
            #expect(error.description.contains("--advertise must be a host name or an IP address"), "\(error)")
        }
    }
}
