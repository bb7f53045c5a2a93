import Configuration

/// Where a setting's value came from; errors name it that way.
enum SettingOrigin: Sendable {
    /// The configuration file: the dotted key, and the provider that knows its lines.
    case file(YAMLFileProvider, key: String)
    /// An environment variable.
    case environment(String)
    /// A command-line flag (`--min-expires`).
    case flag(String)

    /// Whether the value came from the configuration file.
    var isFile: Bool {
        if case .file = self { return true }
        return false
    }
}

/// One setting's value at one level (file, environment or flags), as its parser sees it.
struct SettingValue: Sendable {
    /// The value; nil when the file holds one the setting's type cannot hold.
    var content: ConfigContent?
    var origin: SettingOrigin

    /// The setting as errors name it: `registrar.min_expires`, `environment SIP_REGISTRAR_MIN_EXPIRES`, `--min-expires`.
    var name: String {
        switch origin {
        case .file(_, let key): return key
        case .environment(let variable): return "environment \(variable)"
        case .flag(let flag): return flag
        }
    }

    /// The text; empty for a value that is not a single string.
    var text: String {
        if case .string(let s) = content { return s }
        return ""
    }

    /// The text; nil for a value that is not a single string.
    var string: String? {
        if case .string(let s) = content { return s }
        return nil
    }

    /// The items of a list; nil for a value that is not a list.
    var list: [String]? {
        if case .stringArray(let items) = content { return items }
        return nil
    }

    /// The whole number; nil for a value that is not one.
    var int: Int? {
        if case .int(let n) = content { return n }
        return nil
    }

    /// The truth value; nil for a value that is not one.
    var bool: Bool? {
        if case .bool(let b) = content { return b }
        return nil
    }

    /// An error about the value: `FILE:LINE: ` first when it came from the file.
    func fail(_ message: String) -> ConfigurationError {
        guard case .file(let file, let key) = origin else { return ConfigurationError(message) }
        return ConfigurationError("\(file.path):\(file.line(of: key)): \(message)")
    }

    /// An error about one item of a list (its own line in the file).
    func fail(item: Int, _ message: String) -> ConfigurationError {
        guard case .file(let file, let key) = origin else { return ConfigurationError(message) }
        return ConfigurationError("\(file.path):\(file.line(of: key, item: item)): \(message)")
    }

    /// An error about a whole section of the file (`tls`); elsewhere as ``fail(_:)``.
    func fail(section: String, _ message: String) -> ConfigurationError {
        guard case .file(let file, _) = origin else { return ConfigurationError(message) }
        return ConfigurationError("\(file.path):\(file.line(of: section)): \(message)")
    }

    /// The text when it is not empty, else nil (an empty setting means "none").
    var nonEmpty: String? { text.isEmpty ? nil : text }
}

/// One setting: its file key, environment variables, flag, type and parser. The table of all of
/// them (``ConfigurationSetting/all``) is the one description of the configuration.
struct ConfigurationSetting: Sendable {
    /// Applies a value to the configuration, or throws an error naming the value's origin.
    typealias Apply = @Sendable (SettingValue, inout ServerConfiguration) throws(ConfigurationError) -> Void

    /// The dotted key in the file (`registrar.min_expires`); nil when the file cannot set it.
    var key: String?
    /// The environment variables, the first given one wins.
    var environment: [String]
    /// The flag of `sip-registrar serve`; the flags provider holds its value under ``key``.
    var flag: String?
    /// The type read from the file and the flags; the environment gives text, converted to it.
    var type: ConfigType
    /// In the file, a single scalar also stands for a list of one (`udp: ":5060"`).
    var scalarIsList = false
    /// Whether the value is a secret (never printed by the library's diagnostics).
    var isSecret = false
    /// The parser: checks the form and sets the field.
    var apply: Apply

    /// A setting; `apply` is unused for the members of a ``ConfigurationGroup``, which applies them together.
    init(_ key: String?, env: [String] = [], flag: String? = nil, _ type: ConfigType, scalarIsList: Bool = false,
         secret: Bool = false, apply: @escaping Apply) {
        self.key = key
        self.environment = env
        self.flag = flag
        self.type = type
        self.scalarIsList = scalarIsList
        self.isSecret = secret
        self.apply = apply
    }

    /// The flags provider's key for this setting (the file key, or the flag's name when there is none).
    var configKey: AbsoluteConfigKey? {
        guard let name = key ?? flag.map({ String($0.drop(while: { $0 == "-" })) }) else { return nil }
        return AbsoluteConfigKey(name.split(separator: ".").map(String.init))
    }
}

/// Several settings read together at each level, because one decides how the others apply
/// (the listeners, the certificate and its key).
struct ConfigurationGroup: Sendable {
    /// Applies the members' values of one level (nil: not given there); called when any is given.
    typealias Apply = @Sendable ([SettingValue?], inout ServerConfiguration) throws(ConfigurationError) -> Void

    /// The settings read together, in the order `apply` receives their values.
    var members: [ConfigurationSetting]
    var apply: Apply
}

/// An entry of the settings table.
enum ConfigurationEntry: Sendable {
    /// A setting applied on its own.
    case setting(ConfigurationSetting)
    /// Settings applied together at each level.
    case group(ConfigurationGroup)

    /// The settings of the entry.
    var settings: [ConfigurationSetting] {
        switch self {
        case .setting(let s): return [s]
        case .group(let g): return g.members
        }
    }
}
