// swift-tools-version:6.1
import PackageDescription

let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "sip-registrar",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "SIPMessage", targets: ["SIPMessage"]),
        .library(name: "SIPRegistrar", targets: ["SIPRegistrar"]),
        .library(name: "SIPTLS", targets: ["SIPTLS"]),
        .library(name: "SIPTransport", targets: ["SIPTransport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.0"),
    ],
    targets: [
        // The SIP message layer: URIs, headers, requests, responses, parser, serializer. No I/O.
        .target(
            name: "SIPMessage",
            dependencies: [.product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SIPMessageTests",
            dependencies: ["SIPMessage"],
            swiftSettings: strictSettings
        ),

        // The registrar: RFC 3261 10.3, SIPS rules, scheme-filtered lookup. Message layer only.
        .target(name: "SIPRegistrar", dependencies: ["SIPMessage"], swiftSettings: strictSettings),
        .testTarget(name: "SIPRegistrarTests", dependencies: ["SIPRegistrar"], swiftSettings: strictSettings),

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
                "SIPTLS", "COpenSSL",
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
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SIPTransportTests",
            dependencies: [
                "SIPTransport", "SIPMessage", "SIPTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            exclude: ["sipp"],
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
