import Foundation
import SIPRegistrar
@testable import SIPRegistrarServer
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
    @Test func spreadIsOffByDefaultAndReadFromTheFile() throws {
        let path = NSTemporaryDirectory() + "sipreg-\(UUID().uuidString).yaml"
        try "listen:\n  spread: true\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try ConfigurationLoader.load(file: path, environment: [:], overrides: ConfigurationOverrides()).spreadAcrossLoops)
        #expect(!ServerConfiguration.defaults.spreadAcrossLoops)
        try "listen:\n  spread: sometimes\n".write(toFile: path, atomically: true, encoding: .utf8)
        #expect(throws: ConfigurationError.self) {
            try ConfigurationLoader.load(file: path, environment: [:], overrides: ConfigurationOverrides())
        }
    }
}
