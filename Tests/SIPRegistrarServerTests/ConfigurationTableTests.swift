import Foundation
@testable import SIPRegistrarServer
import SIPTestSupport
import Testing

/// The settings table: one description of every setting, read in precedence order.
@Suite struct ConfigurationTableTests {
    func write(_ yaml: String) -> String {
        let path = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString).yaml"
        try? yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theShippedFileSetsEveryKeyToItsDefault() throws {
        let shipped = PackageRoot.path("config/registrar.yaml")
        #expect(try ConfigurationLoader.load(file: shipped, environment: [:], overrides: .init()) == ServerConfiguration.defaults)
    }

    @Test func flagsBeatEnvironmentBeatFileBeatDefaults() throws {
        let file = write("registrar:\n  min_expires: 70\n  max_expires: 700\n")
        #expect(try ConfigurationLoader.load(file: file, environment: [:], overrides: .init()).minExpires == 70)
        let env = ["SIP_REGISTRAR_MIN_EXPIRES": "80"]
        #expect(try ConfigurationLoader.load(file: file, environment: env, overrides: .init()).minExpires == 80)
        var flags = ConfigurationOverrides()
        flags.minExpires = 90
        let c = try ConfigurationLoader.load(file: file, environment: env, overrides: flags)
        #expect(c.minExpires == 90 && c.maxExpires == 700 && c.defaultExpires == ServerConfiguration.defaults.defaultExpires)
    }

    @Test func listenerFlagsReplaceTheConfiguredListeners() throws {
        let file = write("listen:\n  udp: \":5070\"\n")
        let fromFile = try ConfigurationLoader.load(file: file, environment: [:], overrides: .init())
        #expect(fromFile.udp == [ListenAddress(host: "::", port: 5070)] && fromFile.tcp == ServerConfiguration.defaults.tcp)
        var flags = ConfigurationOverrides()
        flags.tcp = ["127.0.0.1:5080"]
        let c = try ConfigurationLoader.load(file: file, environment: [:], overrides: flags)
        #expect(c.tcp == [ListenAddress(host: "127.0.0.1", port: 5080)] && c.udp.isEmpty && c.tls.isEmpty && c.wss.isEmpty)
    }

    @Test func everyFileKeyOfTheTableIsAccepted() throws {
        for key in ConfigurationSetting.fileKeys {
            #expect(ConfigurationSetting.sections[key] == nil, "\(key) is both a section and a setting")
        }
        let unknown = write("limits:\n  max_binding: 3\n")
        #expect(throws: ConfigurationError("\(unknown):2: unknown key 'limits.max_binding'")) {
            try ConfigurationLoader.load(file: unknown, environment: [:], overrides: .init())
        }
        // A section's key is not a top-level key by its dotted name.
        let dotted = write("registrar.min_expires: 30\n")
        #expect(throws: ConfigurationError("\(dotted):1: unknown key 'registrar.min_expires'")) {
            try ConfigurationLoader.load(file: dotted, environment: [:], overrides: .init())
        }
    }

    /// A module's own `validate()` finds the fault; the message still says where the value came
    /// from: the file and line, the variable or the flag.
    @Test func validationErrorsNameWhereTheValueCameFrom() throws {
        let file = write("auth:\n  realm: example.com\n  nonce_lifetime: 0\n")
        #expect(throws: ConfigurationError("\(file):3: auth.nonce_lifetime: nonce lifetime must be positive (got 0)")) {
            try ConfigurationLoader.load(file: file, environment: [:], overrides: .init())
        }
        let expires = write("registrar:\n  min_expires: 0\n  max_expires: 0\n")
        #expect(throws: ConfigurationError("\(expires):3: registrar.max_expires: max-expires must be positive (got 0)")) {
            try ConfigurationLoader.load(file: expires, environment: [:], overrides: .init())
        }
        #expect(throws: ConfigurationError("environment SIP_REGISTRAR_MIN_EXPIRES: min-expires must not be negative (got -5)")) {
            try ConfigurationLoader.load(file: nil, environment: ["SIP_REGISTRAR_MIN_EXPIRES": "-5"], overrides: .init())
        }
        var flags = ConfigurationOverrides()
        flags.minExpires = 0
        flags.maxExpires = 0
        #expect(throws: ConfigurationError("--max-expires: max-expires must be positive (got 0)")) {
            try ConfigurationLoader.load(file: nil, environment: [:], overrides: flags)
        }
        let limits = write("limits:\n  failed_auth_window: 0\n")
        #expect(throws: ConfigurationError("\(limits):2: limits.failed_auth_window: must be positive (got 0)")) {
            try ConfigurationLoader.load(file: limits, environment: [:], overrides: .init())
        }
    }
}
