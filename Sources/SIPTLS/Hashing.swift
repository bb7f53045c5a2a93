internal import COpenSSL
internal import CSIPTLSShims

/// Hashes, HMAC and random bytes from the same OpenSSL the TLS legs use, so the
/// product carries one cryptographic library. Digest authentication (RFC 8760:
/// SHA-256 and MD5) and its stateless nonces are built on these.
public enum OpenSSLHashing {
    /// A message digest OpenSSL computes.
    public enum Algorithm: Sendable, Hashable {
        /// SHA-256 (FIPS 180-4): the digest RFC 8760 adds to SIP digest authentication.
        case sha256
        /// MD5 (RFC 1321): RFC 2617's digest, still the one most SIP clients send.
        case md5

        var evp: OpaquePointer? {
            switch self {
            case .sha256: return EVP_sha256()
            case .md5: return EVP_md5()
            }
        }

        /// Length of a digest in bytes.
        public var length: Int { self == .sha256 ? 32 : 16 }
    }

    /// The digest of `bytes`.
    public static func hash(_ algorithm: Algorithm, _ bytes: some Collection<UInt8>) -> [UInt8] {
        OpenSSLErrors.clear()
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = withContiguous(bytes) { input in
            out.withUnsafeMutableBufferPointer { o in
                EVP_Digest(input.baseAddress, input.count, o.baseAddress, &length, algorithm.evp, nil)
            }
        }
        // EVP_Digest fails only when the allocator does; a digest cannot be faked, so stop.
        precondition(ok == 1, "EVP_Digest failed: \(OpenSSLErrors.drain())")
        return Array(out[0..<Int(length)])
    }

    /// HMAC-SHA-256 of `message` under `key`.
    public static func hmacSHA256(key: some Collection<UInt8>, _ message: some Collection<UInt8>) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let result = withContiguous(key) { k in
            withContiguous(message) { m in
                out.withUnsafeMutableBufferPointer { o in
                    HMAC(EVP_sha256(), k.baseAddress, Int32(k.count), m.baseAddress, m.count, o.baseAddress, &length)
                }
            }
        }
        precondition(result != nil, "HMAC failed: \(OpenSSLErrors.drain())")
        return Array(out[0..<Int(length)])
    }

    /// `count` bytes from OpenSSL's CSPRNG.
    public static func randomBytes(_ count: Int) throws(TLSError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32($0.count)) }
        guard ok == 1 else { throw TLSError.configuration("no random bytes from RAND_bytes", stack: OpenSSLErrors.drain()) }
        return out
    }

    private static func withContiguous<R>(_ bytes: some Collection<UInt8>, _ body: (UnsafeBufferPointer<UInt8>) -> R) -> R {
        if let r = bytes.withContiguousStorageIfAvailable(body) { return r }
        return Array(bytes).withUnsafeBufferPointer(body)
    }
}

/// HMAC-SHA-256 under one key, made once: each MAC copies the keyed state instead of looking
/// up the algorithm and hashing the key again (0.8 against 1.7 us for a 40-byte message, and
/// no lock in OpenSSL's algorithm store). For MACs computed per message, e.g. flow tokens.
///
/// `@unchecked Sendable`: the context is written only in `init` (keyed there) and freed in
/// `deinit`; ``mac(_:)`` passes it to `EVP_MAC_CTX_dup` as a `const` source, which only reads
/// it (the copy gets its own state and a new reference to the algorithm, an atomic count),
/// so any number of threads may call ``mac(_:)`` at once.
public final class HMACSHA256Key: @unchecked Sendable {
    private let keyed: OpaquePointer

    /// A keyed context; throws when OpenSSL cannot make one (no HMAC or SHA-256 in its providers).
    public init(key: some Collection<UInt8>) throws(TLSError) {
        OpenSSLErrors.clear()
        let bytes = Array(key)
        let made = bytes.withUnsafeBufferPointer { CSIPTLSShims_hmac_sha256_new($0.baseAddress, $0.count) }
        guard let made else { throw TLSError.configuration("cannot make an HMAC-SHA256 context", stack: OpenSSLErrors.drain()) }
        keyed = made
    }

    deinit { EVP_MAC_CTX_free(keyed) }

    /// HMAC-SHA-256 of `message`: the same 32 bytes as ``OpenSSLHashing/hmacSHA256(key:_:)``.
    public func mac(_ message: some Collection<UInt8>) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        let keyed = self.keyed
        func run(_ m: UnsafeBufferPointer<UInt8>) -> Int32 {
            out.withUnsafeMutableBufferPointer { o in CSIPTLSShims_hmac_sha256_keyed(keyed, m.baseAddress, m.count, o.baseAddress) }
        }
        let ok = message.withContiguousStorageIfAvailable(run) ?? Array(message).withUnsafeBufferPointer(run)
        // Fails only when the allocator does; a MAC cannot be faked, so stop.
        precondition(ok == 1, "HMAC failed: \(OpenSSLErrors.drain())")
        return out
    }
}
