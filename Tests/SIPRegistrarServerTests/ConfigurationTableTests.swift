import Foundation
@testable import SIPRegistrarServer
import Testing

/// The settings table: one description of every setting, read in precedence order.
@Suite struct ConfigurationTableTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    func write(_ yaml: String) -> String {
        let path = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString).yaml"
        try? yaml.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test func theShippedFileSetsEveryKeyToItsDefault() throws {
        let shipped = Self.root.path + "/config/registrar.yaml"
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
    }
}
