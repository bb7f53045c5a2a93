import SIPRegistrar
import SIPTLS

#if canImport(Glibc)
import Glibc
#endif

/// Digest hashing on the system OpenSSL (the same library as the TLS legs).
struct OpenSSLDigestHashing: DigestHashing {
    func hash(_ algorithm: DigestAlgorithm, _ bytes: [UInt8]) -> [UInt8] {
        OpenSSLHashing.hash(algorithm == .sha256 ? .sha256 : .md5, bytes)
    }

    func hmacSHA256(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        OpenSSLHashing.hmacSHA256(key: key, message)
    }
}

/// Reading and writing the users file.
package enum UsersFile {
    /// Loads and parses a users file; errors name the file and line.
    package static func load(_ path: String) throws(ConfigurationError) -> UserTable {
        guard let text = ConfigurationLoader.readFile(path) else {
            throw ConfigurationError("\(path): cannot read the users file")
        }
        do throws(UserTableError) {
            return try UserTable.parse(text)
        } catch {
            throw ConfigurationError("\(path):\(error.line): \(error.message)")
        }
    }

    /// Sets the password of `user@realm` (HA1 for SHA-256 and MD5; never the password itself),
    /// keeping its aliases unless new ones are given. Writes a new file and renames it over the
    /// old one, readable by its owner only. Returns whether the user was new.
    @discardableResult
    package static func setPassword(path: String, address: String, password: String, aliases: [String]?) throws(ConfigurationError) -> Bool {
        guard let at = address.lastIndex(of: "@"), at != address.startIndex, address.index(after: at) != address.endIndex,
              !address.contains(where: { $0 == " " || $0 == "\t" || $0 == ":" }) else {
            throw ConfigurationError("'\(address)' is not USER@DOMAIN")
        }
        guard !password.isEmpty else { throw ConfigurationError("empty password (read from standard input)") }
        for a in aliases ?? [] where !a.contains("@") || a.contains(" ") {
            throw ConfigurationError("--alias '\(a)' is not USER@DOMAIN")
        }
        var table = UserTable()
        if access(path, F_OK) == 0 { table = try load(path) }
        let user = String(address[..<at])
        let realm = String(address[address.index(after: at)...]).lowercased()
        let hashing = OpenSSLDigestHashing()
        let existing = table.lookup(user: user, realm: realm)
        var ha1: [DigestAlgorithm: String] = [:]
        for a in DigestAlgorithm.allCases { ha1[a] = hashing.ha1(a, user: user, realm: realm, password: password) }
        table.upsert(DigestUser(user: user, realm: realm, ha1: ha1, aliases: aliases ?? existing?.aliases ?? []))
        try write(table.serialized, to: path)
        return existing == nil
    }

    /// Writes `text` to a new temporary file next to `path` and renames it over `path`. The
    /// temporary file is created with `O_CREAT | O_EXCL | O_NOFOLLOW`, mode 600, under a random
    /// name: a file or symbolic link someone placed there beforehand is never opened, followed
    /// or truncated (the write then fails instead), and nobody else can read the hashes meanwhile.
    static func write(_ text: String, to path: String) throws(ConfigurationError) {
        var fd: Int32 = -1
        var tmp = ""
        for _ in 0..<8 {
            let suffix = ((try? OpenSSLHashing.randomBytes(6)) ?? []).map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined()
            tmp = path + ".tmp.\(getpid()).\(suffix)"
            fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            if fd >= 0 || errno != EEXIST { break }
        }
        guard fd >= 0 else { throw ConfigurationError("\(path): cannot write (\(String(cString: strerror(errno))))") }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
            if n <= 0 {
                close(fd)
                unlink(tmp)
                throw ConfigurationError("\(path): cannot write (\(String(cString: strerror(errno))))")
            }
            written += n
        }
        fsync(fd)
        close(fd)
        guard rename(tmp, path) == 0 else {
            unlink(tmp)
            throw ConfigurationError("\(path): cannot replace (\(String(cString: strerror(errno))))")
        }
    }
}
