// swift-tools-version:6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "sip-registrar",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "SIPMessage", targets: ["SIPMessage"]),
        .library(name: "SIPRegistrar", targets: ["SIPRegistrar"]),
        .library(name: "SIPTLS", targets: ["SIPTLS"]),
        .library(name: "SIPTransport", targets: ["SIPTransport"]),
        .library(name: "SIPLocationStores", targets: ["SIPLocationStores"]),
        .executable(name: "sip-registrar", targets: ["sip-registrar"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.5.0"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.2.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.0.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/apple/swift-configuration.git", from: "1.4.0", traits: []),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.0"),
        // `swift package generate-documentation`: the DocC catalogs of the four libraries (.ci/run).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // Scaffolding every test target shares (certificates, process runner, package root, message builders).
        // Test targets only depend on it; no product ships it.
        .target(name: "SIPTestSupport", dependencies: ["SIPMessage"], path: "Tests/SIPTestSupport", swiftSettings: strictSettings),

        // The SIP message layer: URIs, headers, requests, responses, parser, serializer. No I/O.
        .target(
            name: "SIPMessage",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SIPMessageTests",
            dependencies: ["SIPMessage", "SIPTestSupport"],
            swiftSettings: strictSettings
        ),

        // The registrar: RFC 3261 10.3, SIPS rules, scheme-filtered lookup. Message layer only.
        .target(name: "SIPRegistrar", dependencies: ["SIPMessage"], swiftSettings: strictSettings),
        // The tests take digest hashing from SIPTLS (OpenSSL), as the server does.
        .testTarget(name: "SIPRegistrarTests", dependencies: ["SIPRegistrar", "SIPTLS", "SIPTestSupport"], swiftSettings: strictSettings),

        // The proxy core (RFC 3261 16, 17.1): pure state machines with an injected clock. Message layer only.
        .target(name: "SIPProxy", dependencies: ["SIPMessage"], swiftSettings: strictSettings),
        .testTarget(name: "SIPProxyTests", dependencies: ["SIPProxy", "SIPMessage", "SIPTestSupport"], swiftSettings: strictSettings),

        // TLS on the system OpenSSL 3 (Debian's libssl-dev), through memory BIOs.
        .systemLibrary(name: "COpenSSL", path: "Sources/COpenSSL", pkgConfig: "openssl",
                       providers: [.apt(["libssl-dev"])]),
        .target(name: "CSIPTLSShims", dependencies: ["COpenSSL"]),
        .target(
            name: "SIPTLS",
            dependencies: [
                "COpenSSL", "CSIPTLSShims",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SIPTLSTests",
            dependencies: [
                "SIPTLS", "COpenSSL", "SIPTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: strictSettings
        ),

        // Legs (UDP, TCP, TLS), stream framing, transactions and the dispatcher.
        .target(
            name: "SIPTransport",
            dependencies: [
                "SIPMessage", "SIPTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SIPTransportTests",
            dependencies: [
                "SIPTransport", "SIPMessage", "SIPTLS", "SIPTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            exclude: ["sipp"],
            swiftSettings: strictSettings
        ),

        // The durable binding stores behind SIPRegistrar's BindingStore: SQLite/ (GRDB) and
        // PostgreSQL/ (PostgresNIO, with the change log and node table of a shared store), over
        // one group committer and one binding-row mapping in Common/.
        .target(
            name: "SIPLocationStores",
            dependencies: [
                "SIPMessage", "SIPRegistrar",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strictSettings
        ),

        // The server: configuration, store wiring, admin HTTP API, metrics, lifecycle.
        .target(
            name: "SIPRegistrarServer",
            dependencies: [
                "SIPMessage", "SIPRegistrar", "SIPProxy", "SIPTransport", "SIPTLS", "SIPLocationStores",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Configuration", package: "swift-configuration"),
            ],
            swiftSettings: strictSettings
        ),
        // The executable: argument parsing only.
        .executableTarget(
            name: "sip-registrar",
            dependencies: [
                "SIPRegistrarServer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SIPRegistrarServerTests",
            dependencies: ["SIPRegistrarServer", "SIPLocationStores", "SIPRegistrar", "SIPMessage", "SIPTLS", "SIPTestSupport",
                           "sip-registrar"],
            exclude: ["netsip", "proxy", "websocket", "sipsupport.py"],
            swiftSettings: strictSettings
        ),

        // Benchmarks: release-mode executables that print medians; not part of `swift test`.
        .target(name: "CAllocCounter", path: "Benchmarks/CAllocCounter"),
        .executableTarget(
            name: "SIPBenchmarks",
            dependencies: [
                "SIPMessage", "SIPRegistrar", "SIPTransport", "SIPTLS", "CAllocCounter",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/SIPBenchmarks",
            swiftSettings: strictSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
