import Foundation

/// A development PKI made by the project's own `certs/generate.sh`: a CA, a server
/// certificate for localhost, 127.0.0.1 and the domain (example.com unless `--domain`
/// says otherwise), and one certificate per `--client` user.
public struct TestCertificates: Sendable {
    /// The folder the script wrote into.
    public let dir: String

    /// - Parameter dir: a folder `certs/generate.sh` has written into.
    public init(dir: String) { self.dir = dir }

    /// The CA certificate.
    public var ca: String { dir + "/ca.pem" }
    /// The server certificate.
    public var serverCert: String { dir + "/server.pem" }
    /// The server's private key.
    public var serverKey: String { dir + "/server.key" }
    /// The certificate of client `user`.
    public func cert(_ user: String) -> String { dir + "/\(user).pem" }
    /// The private key of client `user`.
    public func key(_ user: String) -> String { dir + "/\(user).key" }

    /// What the script failed with.
    public struct Failure: Error, CustomStringConvertible {
        /// The script's standard error.
        public var description: String
    }

    /// Runs `certs/generate.sh --out DIR [--client USER]… EXTRA…` and returns its result.
    /// - Parameters:
    ///   - dir: the folder to write into (created by the script).
    ///   - clients: users that get a client certificate.
    ///   - extra: more script arguments (`--rsa`, `--domain D`).
    public static func script(out dir: String, clients: [String] = [], extra: [String] = []) throws
        -> (status: Int32, out: String, err: String) {
        try run("/bin/bash", [PackageRoot.path("certs/generate.sh"), "--out", dir] + clients.flatMap { ["--client", $0] } + extra)
    }

    /// A fresh PKI in a new temporary folder named `prefix-UUID`; the caller removes it.
    /// - Throws: ``Failure`` with the script's standard error when it fails.
    public static func make(prefix: String = "sipreg-pki", clients: [String] = [], extra: [String] = []) throws -> TestCertificates {
        let dir = NSTemporaryDirectory() + "\(prefix)-\(UUID().uuidString)"
        let r = try script(out: dir, clients: clients, extra: extra)
        guard r.status == 0 else { throw Failure(description: "generate.sh: \(r.err)") }
        return TestCertificates(dir: dir)
    }
}
