internal import COpenSSL
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Reading PEM files and parsing PEM bytes, with errors that name the file.
enum PEM {
    /// The bytes of a PEM source; a missing or unreadable file is named with errno's reason.
    static func bytes(of source: PEMSource, what: String) throws(TLSError) -> [UInt8] {
        switch source {
        case .bytes(let b):
            return b
        case .file(let path):
            guard let f = fopen(path, "rb") else {
                let reason = String(cString: strerror(errno))
                throw .configuration("\(what) file \(path): \(reason)", stack: [])
            }
            defer { fclose(f) }
            var out: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 16_384)
            while true {
                let n = chunk.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, f) }
                if n > 0 { out.append(contentsOf: chunk[0..<n]) }
                if n < chunk.count {
                    if ferror(f) != 0 {
                        throw .configuration("\(what) file \(path): \(String(cString: strerror(errno)))", stack: [])
                    }
                    break
                }
                if out.count > 4 * 1024 * 1024 { throw .configuration("\(what) file \(path): larger than 4 MiB", stack: []) }
            }
            return out
        }
    }

    /// A memory BIO holding a copy of `bytes` (BIO_write copies, unlike BIO_new_mem_buf).
    static func withBIO<R>(_ bytes: [UInt8], _ body: (OpaquePointer) throws(TLSError) -> R) throws(TLSError) -> R {
        guard let bio = BIO_new(BIO_s_mem()) else { throw .configuration("out of memory", stack: OpenSSLErrors.drain()) }
        defer { BIO_free(bio) }
        if !bytes.isEmpty {
            let written = bytes.withUnsafeBytes { BIO_write(bio, $0.baseAddress, Int32($0.count)) }
            guard written == Int32(bytes.count) else { throw .configuration("cannot buffer PEM data", stack: OpenSSLErrors.drain()) }
        }
        return try body(bio)
    }

    /// Every certificate in PEM bytes, in order (owned X509 pointers wrapped).
    static func certificates(_ bytes: [UInt8], label: String, what: String) throws(TLSError) -> [X509Box] {
        try withBIO(bytes) { bio throws(TLSError) in
            var certs: [X509Box] = []
            OpenSSLErrors.clear()
            while let x = PEM_read_bio_X509(bio, nil, nil, nil) {
                certs.append(X509Box(owning: x))
            }
            // The loop ends with a "no start line" error at the end of the data: expected.
            ERR_clear_error()
            guard !certs.isEmpty else {
                throw .configuration("\(what) \(label): no PEM certificate found", stack: [])
            }
            return certs
        }
    }

    /// A private key from PEM bytes; an encrypted key needs the passphrase (never prompts).
    static func privateKey(_ bytes: [UInt8], passphrase: String?, label: String) throws(TLSError) -> EVPKeyBox {
        try withBIO(bytes) { bio throws(TLSError) in
            OpenSSLErrors.clear()
            let key: OpaquePointer?
            if let passphrase {
                // With no callback, OpenSSL reads the passphrase from `u` as a C string.
                key = passphrase.withCString { p in
                    PEM_read_bio_PrivateKey(bio, nil, nil, UnsafeMutableRawPointer(mutating: p))
                }
            } else {
                // A callback that supplies no passphrase: an encrypted key fails instead of prompting on a terminal.
                let noPassphrase: @convention(c) (UnsafeMutablePointer<CChar>?, Int32, Int32, UnsafeMutableRawPointer?) -> Int32 = { _, _, _, _ in 0 }
                key = PEM_read_bio_PrivateKey(bio, nil, noPassphrase, nil)
            }
            guard let key else {
                let stack = OpenSSLErrors.drain()
                let hint = passphrase == nil && bytes.containsSequence(Array("ENCRYPTED".utf8))
                    ? " (the key is encrypted and no passphrase was given)" : ""
                throw .configuration("private key \(label): unreadable\(hint)", stack: stack)
            }
            return EVPKeyBox(owning: key)
        }
    }
}

/// Owns one X509 reference.
final class X509Box {
    let pointer: OpaquePointer
    init(owning p: OpaquePointer) { pointer = p }
    deinit { X509_free(pointer) }
}

/// Owns one EVP_PKEY reference.
final class EVPKeyBox {
    let pointer: OpaquePointer
    init(owning p: OpaquePointer) { pointer = p }
    deinit { EVP_PKEY_free(pointer) }
}

extension Array where Element == UInt8 {
    func containsSequence(_ needle: [UInt8]) -> Bool {
        guard needle.count <= count, !needle.isEmpty else { return false }
        for i in 0...(count - needle.count) where self[i] == needle[0] {
            if Array(self[i..<(i + needle.count)]) == needle { return true }
        }
        return false
    }
}
