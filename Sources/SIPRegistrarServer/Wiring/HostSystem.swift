#if canImport(Glibc)
import Glibc
#endif

/// What the server asks of the machine it runs on: its name, its process id, and glibc's
/// allocator. One place, so that start-up code does not repeat the C calls.
enum HostSystem {
    /// The host name (`gethostname`), or nil when it cannot be read or is empty.
    static func hostName() -> String? {
        var host = [CChar](repeating: 0, count: 256)
        guard gethostname(&host, host.count) == 0 else { return nil }
        let name = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return name.isEmpty ? nil : name
    }

    /// `HOSTNAME-PID`: unique among the nodes of one database as long as hosts are named apart.
    static func defaultNodeName() -> String {
        "\(hostName() ?? "node")-\(getpid())"
    }

    /// glibc's `malloc_trim(0)` (not in Swift's Glibc module; looked up at run time, a no-op elsewhere).
    static func returnFreedMemory() {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        typealias Trim = @convention(c) (Int) -> Int32
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
    }
}
