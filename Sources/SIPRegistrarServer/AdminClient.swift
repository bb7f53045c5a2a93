import Foundation
import NIOCore
import NIOPosix

/// A minimal HTTP/1.1 client for `sip-registrar lookup`: one GET to the admin API.
package enum AdminClient {
    package struct Failure: Error, CustomStringConvertible {
        package var description: String
    }

    /// GETs `path` from `base` (`http://host:port`), with `Authorization: Bearer token` when a
    /// token is given; returns the status and the body.
    package static func get(base: String, path: String, token: String? = nil) async throws -> (status: Int, body: String) {
        guard base.hasPrefix("http://") else { throw Failure(description: "--admin must be an http:// URL (got '\(base)')") }
        var hostPort = String(base.dropFirst(7))
        while hostPort.hasSuffix("/") { hostPort.removeLast() }
        guard let address = ListenAddress(hostPort), address.port > 0 else {
            throw Failure(description: "--admin '\(base)' is not http://HOST:PORT")
        }
        let host = address.host == "::" ? "::1" : address.host
        let channel: any Channel
        let collector = Collector()
        do {
            channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(.seconds(5))
                .channelInitializer { ch in ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(collector) } }
                .connect(host: host, port: address.port).get()
        } catch {
            throw Failure(description: "cannot reach the admin API at \(base): \(error)")
        }
        let authorization = token.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        let request = "GET \(path) HTTP/1.1\r\nHost: \(hostPort)\r\nConnection: close\r\nAccept: application/json\r\n\(authorization)\r\n"
        try await channel.writeAndFlush(ByteBuffer(string: request))
        try await channel.closeFuture.get()
        let text = collector.text
        guard let headEnd = text.range(of: "\r\n\r\n"), let statusLine = text.split(separator: "\r\n").first else {
            throw Failure(description: "no HTTP answer from \(base)")
        }
        let parts = statusLine.split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { throw Failure(description: "bad HTTP answer from \(base)") }
        var body = String(text[headEnd.upperBound...])
        if text[..<headEnd.lowerBound].lowercased().contains("transfer-encoding: chunked") { body = dechunk(body) }
        return (status, body)
    }

    static func dechunk(_ s: String) -> String {
        var out = ""
        var rest = Substring(s)
        while let lineEnd = rest.range(of: "\r\n") {
            guard let size = Int(rest[..<lineEnd.lowerBound], radix: 16), size > 0 else { break }
            let start = lineEnd.upperBound
            let end = rest.utf8.index(start, offsetBy: size, limitedBy: rest.endIndex) ?? rest.endIndex
            out += rest[start..<end]
            rest = rest[end...].dropFirst(2)
        }
        return out
    }

    /// The admin URL a client on this machine uses for a server's `admin` address: a wildcard
    /// address becomes loopback. nil when the admin API is off.
    package static func url(for admin: ListenAddress?) -> String? {
        guard let admin else { return nil }
        let host: String
        switch admin.host {
        case "::": host = "::1"
        case "0.0.0.0": host = "127.0.0.1"
        default: host = admin.host
        }
        return "http://" + ListenAddress(host: host, port: admin.port).description
    }

    /// Percent-encodes a query value (everything but unreserved characters).
    package static func queryEncode(_ s: String) -> String {
        var out = ""
        for b in s.utf8 {
            switch b {
            case 0x30...0x39, 0x41...0x5A, 0x61...0x7A, 0x2D, 0x2E, 0x5F, 0x7E: out.unicodeScalars.append(UnicodeScalar(b))
            default: out += "%" + (b < 16 ? "0" : "") + String(b, radix: 16, uppercase: true)
            }
        }
        return out
    }

    final class Collector: ChannelInboundHandler, @unchecked Sendable {
        // Safety: written only on its channel's event loop; read after the channel closed
        // (closeFuture completion orders the accesses).
        typealias InboundIn = ByteBuffer
        private var bytes: [UInt8] = []
        var text: String { String(decoding: bytes, as: UTF8.self) }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            var b = unwrapInboundIn(data)
            bytes += b.readBytes(length: b.readableBytes) ?? []
        }
    }
}
