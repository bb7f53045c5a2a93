import Logging
import ServiceLifecycle
import SIPLocationStores
import SIPRegistrar

/// The store a configuration names, opened and ready, with what comes with it.
struct OpenedStore: Sendable {
    /// What the registrar writes through.
    let store: any BindingStore
    /// This node's name in a shared store; nil when the store is this process's alone.
    let node: String?
    /// Where the other nodes of a shared store are reached; nil without other nodes.
    let directory: NodeDirectory?
    /// The services the store needs once the registrar exists (a shared store's replication).
    let services: @Sendable (_ registrar: Registrar) -> [any Service]
    /// Stops what the store runs in the background (a connection pool).
    let close: @Sendable () -> Void

    init(store: any BindingStore, node: String? = nil, directory: NodeDirectory? = nil,
         services: @escaping @Sendable (_ registrar: Registrar) -> [any Service] = { _ in [] },
         close: @escaping @Sendable () -> Void = {}) {
        self.store = store
        self.node = node
        self.directory = directory
        self.services = services
        self.close = close
    }
}

/// Opens the store of `store:`: one case per backend, each opened by a function of its own.
enum StoreFactory {
    /// Opens (and for a database, migrates) the configured store. A store that cannot be used
    /// throws `ConfigurationError` with one line naming it and the cause.
    static func make(_ config: ServerConfiguration, metrics: ServerMetrics, logger: Logger) async throws -> OpenedStore {
        switch config.store {
        case .memory: return OpenedStore(store: EphemeralBindingStore())
        case .sqlite(let path): return try sqlite(path, config, logger: logger)
        case .postgres(let url): return try await postgres(url, config, metrics: metrics, logger: logger)
        }
    }

    /// An SQLite file: this process's alone.
    static func sqlite(_ path: String, _ config: ServerConfiguration, logger: Logger) throws -> OpenedStore {
        let store: SQLiteBindingStore
        do {
            store = try SQLiteBindingStore(path: path, synchronous: config.storeSync)
        } catch {
            throw ConfigurationError(error.description)
        }
        if config.storeSync == .normal {
            logger.notice("store_sync: normal: a power cut can lose the last acknowledged REGISTERs", metadata: ["store": "\(config.store)"])
        }
        return OpenedStore(store: store)
    }

    /// A PostgreSQL database shared by several nodes: migrated, with its connection pool running,
    /// the change-log position to replicate from, and the node directory.
    static func postgres(_ url: String, _ config: ServerConfiguration, metrics: ServerMetrics, logger: Logger) async throws -> OpenedStore {
        guard var location = PostgresLocation(url: url) else { throw ConfigurationError("store \(config.store): not a PostgreSQL URL") }
        if location.unencryptedToAnotherHost {
            logger.warning("""
                store: PostgreSQL at \(location.host) without sslmode: the connection is encrypted only if the server offers \
                TLS (sslmode=prefer), and a man in the middle can refuse it; add ?sslmode=require (or sslmode=disable to say \
                that a plain connection is intended)
                """, metadata: ["store": "\(config.store)"])
        }
        if location.password == nil { location.password = config.storePassword }
        var storeLogger = logger
        storeLogger[metadataKey: "component"] = "store"
        let pg = PostgresBindingStore(location: location, node: config.resolvedNodeName,
                                      logger: storeLogger, health: StoreHealth { metrics.storeUp($0) })
        let client = Task { await pg.runClient() }
        let startSequence: Int64
        do {
            _ = try await withTimeout(.seconds(10)) {
                try await pg.migrate()
                return true
            }
            // Read before loading: changes made meanwhile are read again (harmlessly) by the first catch-up.
            startSequence = try await withTimeout(.seconds(15)) { try await pg.changeLog.currentSequence() }
        } catch {
            client.cancel()
            throw ConfigurationError("store \(config.store): cannot use the database: \(describePostgresError(error))")
        }
        // With a shared store, where the other nodes are reached (their flows are theirs).
        let directory = NodeDirectory()
        let nodeAddress = config.nodeAddress
        return OpenedStore(store: pg, node: pg.node, directory: directory, services: { registrar in
            var replicationLogger = logger
            replicationLogger[metadataKey: "component"] = "store"
            return [PostgresReplication(changeLog: pg.changeLog, registrar: registrar, startSequence: startSequence,
                                        logger: replicationLogger, metrics: metrics, directory: directory,
                                        nodeTable: pg.nodeTable, nodeAddress: nodeAddress)]
        }, close: { client.cancel() })
    }
}
