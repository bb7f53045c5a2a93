import Foundation

/// The package's own folder, found from this file's place in the source tree
/// (`Tests/SIPTestSupport/PackageRoot.swift`), so that tests reach the project's scripts
/// and fixtures (`certs/generate.sh`, `Tests/<Target>/...`) wherever the checkout lives.
public enum PackageRoot {
    /// The folder that holds `Package.swift`.
    public static let url: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// ``url`` as a path.
    public static var path: String { url.path }

    /// The path of `relative` (e.g. `"Tests/SIPTransportTests/sipp"`) inside the package.
    public static func path(_ relative: String) -> String { url.appendingPathComponent(relative).path }
}
