import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// 127.0.0.1:`port` as a socket address (0: any port, for the kernel to choose).
public func loopbackAddress(port: Int) -> sockaddr_in {
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return addr
}

/// A loopback port of the given socket type (`SOCK_STREAM`, `SOCK_DGRAM`) that the kernel
/// just handed out and that nobody holds now; 0 if no socket could be had.
public func freeLoopbackPort(_ type: __socket_type = SOCK_STREAM) -> Int {
    let fd = socket(AF_INET, Int32(type.rawValue), 0)
    guard fd >= 0 else { return 0 }
    defer { close(fd) }
    var addr = loopbackAddress(port: 0)
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    return ok ? Int(UInt16(bigEndian: addr.sin_port)) : 0
}
