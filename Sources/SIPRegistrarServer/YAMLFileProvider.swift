import Configuration
import Yams

/// The configuration file as a provider: the YAML document flattened into dotted keys
/// (`registrar.min_expires`), each value remembering its line so that errors read
/// `FILE:LINE: message`.
///
/// Built once from the file; it does not reload. Only the keys of the settings table are
/// accepted: any other key, or a section that is not a mapping, fails the load with its line.
package struct YAMLFileProvider: Sendable {
    /// One item of a list (or one pair of a mapping), with its line.
    struct Item: Sendable {
        /// The mapping key, for an item of a mapping; nil in a list.
        var key: String?
        /// The scalar text; nil when the item is not a scalar.
        var string: String?
        var line: Int
    }

    /// One leaf value, already converted the ways Yams reads a scalar.
    struct Entry: Sendable {
        var line: Int
        var string: String?
        var int: Int?
        var bool: Bool?
        /// The items, when the value is a sequence or a mapping.
        var items: [Item]?
        var isMapping = false
    }

    /// The file's path, as errors name it.
    package let path: String
    private let entries: [String: Entry]
    private let sectionLines: [String: Int]

    /// Reads and flattens the file; an empty file gives no values.
    /// - Parameters:
    ///   - path: The YAML file.
    ///   - keys: The accepted leaf keys, dotted (`tls.certificate`).
    ///   - sections: For each section, the message when it is not a mapping.
    init(path: String, keys: Set<String>, sections: [String: String]) throws(ConfigurationError) {
        self.path = path
        guard let text = ConfigurationLoader.readFile(path) else {
            throw ConfigurationError("\(path): cannot read the configuration file")
        }
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let error as YamlError {
            throw ConfigurationError("\(path): \(Self.yamlErrorText(error))")
        } catch {
            throw ConfigurationError("\(path): \(error)")
        }
        var entries: [String: Entry] = [:]
        var sectionLines: [String: Int] = [:]
        if let root {
            guard let top = root.mapping else { throw ConfigurationError("\(path):\(Self.line(root)): expected a mapping of settings") }
            func fail(_ node: Node, _ message: String) -> ConfigurationError {
                ConfigurationError("\(path):\(Self.line(node)): \(message)")
            }
            for (k, v) in top {
                // A dotted name (`registrar.min_expires`) is a key inside its section, not a top-level one.
                guard let name = k.string, !name.contains("."), keys.contains(name) || sections[name] != nil else {
                    throw fail(k, "unknown key '\(k.string ?? "?")'")
                }
                guard let notMapping = sections[name] else {
                    entries[name] = Self.entry(v)
                    continue
                }
                guard let m = v.mapping else { throw fail(v, notMapping) }
                sectionLines[name] = Self.line(v)
                for (sk, sv) in m {
                    guard let sub = sk.string, keys.contains(name + "." + sub) else {
                        throw fail(sk, "unknown key '\(name).\(sk.string ?? "?")'")
                    }
                    entries[name + "." + sub] = Self.entry(sv)
                }
            }
        }
        self.entries = entries
        self.sectionLines = sectionLines
    }

    /// The line of a key's value, or of a section's mapping; 0 when absent.
    func line(of key: String) -> Int { entries[key]?.line ?? sectionLines[key] ?? 0 }

    /// The line of one item of a list value; the value's line when there is no such item.
    func line(of key: String, item: Int) -> Int {
        guard let items = entries[key]?.items, items.indices.contains(item) else { return line(of: key) }
        return items[item].line
    }

    /// The pairs of a mapping value (`auth.domains`): key, scalar value, line of the key and of the value.
    func pairs(of key: String) -> [(key: String?, value: String?, keyLine: Int, valueLine: Int)]? {
        guard let entry = entries[key], entry.isMapping, let items = entry.items else { return nil }
        return stride(from: 0, to: items.count - 1, by: 2).map { i in
            (items[i].key, items[i + 1].string, items[i].line, items[i + 1].line)
        }
    }

    private static func entry(_ node: Node) -> Entry {
        var e = Entry(line: line(node), string: node.string, int: node.int, bool: node.bool)
        if let seq = node.sequence {
            e.items = seq.map { Item(key: nil, string: $0.string, line: line($0)) }
        } else if let map = node.mapping {
            e.isMapping = true
            e.items = map.flatMap { k, v in
                [Item(key: k.string, string: nil, line: line(k)), Item(key: nil, string: v.string, line: line(v))]
            }
        }
        return e
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

    /// The value of a key as the requested type; nil content when absent.
    /// A scalar asked for as a list is not convertible; the caller decides whether it stands for one item.
    func lookup(_ key: String, type: ConfigType) throws(NotConvertible) -> ConfigContent? {
        guard let e = entries[key] else { return nil }
        switch type {
        case .string:
            guard let s = e.string else { throw NotConvertible() }
            return .string(s)
        case .int:
            guard let n = e.int else { throw NotConvertible() }
            return .int(n)
        case .bool:
            guard let b = e.bool else { throw NotConvertible() }
            return .bool(b)
        case .stringArray:
            guard let items = e.items, !e.isMapping else { throw NotConvertible() }
            return .stringArray(items.map { $0.string ?? "" })
        case .double, .bytes, .intArray, .doubleArray, .boolArray, .byteChunkArray:
            throw NotConvertible()
        }
    }

    /// A value present in the file that the requested type cannot hold.
    struct NotConvertible: Error, CustomStringConvertible {
        var description: String { "the value does not have the expected type" }
    }
}

extension YAMLFileProvider: ConfigSnapshot, ConfigProvider {
    /// The provider's name in the library's diagnostics.
    package var providerName: String { "YAMLFileProvider[\(path)]" }

    /// The value of a dotted key (`AbsoluteConfigKey(["registrar", "min_expires"])`).
    package func value(forKey key: AbsoluteConfigKey, type: ConfigType) throws -> LookupResult {
        let encoded = key.components.joined(separator: ".")
        return LookupResult(encodedKey: encoded, value: try lookup(encoded, type: type).map { ConfigValue($0, isSecret: false) })
    }

    /// As ``value(forKey:type:)``: the file is read once.
    nonisolated(nonsending) package func fetchValue(forKey key: AbsoluteConfigKey, type: ConfigType) async throws -> LookupResult {
        try value(forKey: key, type: type)
    }

    /// One update: the file is read once.
    nonisolated(nonsending) package func watchValue<Return: ~Copyable>(
        forKey key: AbsoluteConfigKey, type: ConfigType,
        updatesHandler: nonisolated(nonsending) (_ updates: ConfigUpdatesAsyncSequence<Result<LookupResult, any Error>, Never>) async throws -> Return
    ) async throws -> Return {
        try await watchValueFromValue(forKey: key, type: type, updatesHandler: updatesHandler)
    }

    /// The provider is its own, immutable snapshot.
    package func snapshot() -> any ConfigSnapshot { self }

    /// One snapshot: the file is read once.
    nonisolated(nonsending) package func watchSnapshot<Return: ~Copyable>(
        updatesHandler: nonisolated(nonsending) (_ updates: ConfigUpdatesAsyncSequence<any ConfigSnapshot, Never>) async throws -> Return
    ) async throws -> Return {
        try await watchSnapshotFromSnapshot(updatesHandler: updatesHandler)
    }
}
