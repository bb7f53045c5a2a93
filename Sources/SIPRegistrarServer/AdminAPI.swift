import Foundation
import Hummingbird
import NIOCore
import SIPLocationStores
import SIPMessage
import SIPRegistrar
import SIPTLS
import SIPTransport

#if canImport(Glibc)
import Glibc
#endif

/// The admin HTTP API (loopback by default):
/// `GET /v1/bindings?aor=ADDR`, `GET /v1/bindings?offset=&limit=`, `DELETE /v1/bindings?aor=ADDR`,
/// `GET /health`, `GET /metrics`. Bad parameters get 400 with a JSON error.
///
/// Every route but `/health` needs `Authorization: Bearer TOKEN` (the token file, see
/// ``AdminToken``), else 401. Every route, `/health` included, answers only requests whose
/// `Host` is an IP literal, `localhost` or the configured admin host name, else 421: a web
/// page on a rebound DNS name cannot reach the API through a browser.
enum AdminAPI {
    struct ContactJSON: Codable, Sendable {
        var uri: String
        var expires: Int
        var q: Double?
        var transport: String
        var source: String
        var instance: String?
        var reg_id: Int?
        var path: [String]
        var user_agent: String?
        var tls_identity: String?
        /// With a shared store: the node that holds the binding (and its connection).
        var node: String?
        var updated_at: String
        var aor: String?

        enum CodingKeys: String, CodingKey {
            case uri, expires, q, transport, source, instance, reg_id, path, user_agent, tls_identity, node, updated_at, aor
        }

        /// Every documented field is present; absent values are `null` (the aor only in paged listings).
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(uri, forKey: .uri)
            try c.encode(expires, forKey: .expires)
            try c.encode(q, forKey: .q)
            try c.encode(transport, forKey: .transport)
            try c.encode(source, forKey: .source)
            try c.encode(instance, forKey: .instance)
            try c.encode(reg_id, forKey: .reg_id)
            try c.encode(path, forKey: .path)
            try c.encode(user_agent, forKey: .user_agent)
            try c.encode(tls_identity, forKey: .tls_identity)
            try c.encode(node, forKey: .node)
            try c.encode(updated_at, forKey: .updated_at)
            try c.encodeIfPresent(aor, forKey: .aor)
        }
    }

    struct BindingsJSON: Codable, Sendable {
        var aor: String
        var contacts: [ContactJSON]
    }

    struct PageJSON: Codable, Sendable {
        var total: Int
        var offset: Int
        var limit: Int
        var contacts: [ContactJSON]
    }

    struct ErrorJSON: Codable, Sendable {
        var error: String
    }

    static func contact(_ b: Binding, now: Int64, withAOR: Bool = false, localNode: String? = nil) -> ContactJSON {
        ContactJSON(uri: b.uri, expires: b.remainingSeconds(at: now), q: b.q.map { Double($0) / 1000 },
                    transport: b.transport.rawValue.lowercased(), source: b.source, instance: b.instance, reg_id: b.regID,
                    path: b.path, user_agent: b.userAgent, tls_identity: b.tlsIdentity, node: b.node ?? localNode,
                    updated_at: ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(b.updatedAt) / 1000)),
                    aor: withAOR ? b.aor : nil)
    }

    static func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func error(_ message: String, status: HTTPResponse.Status = .badRequest) -> Response {
        json(ErrorJSON(error: message), status: status)
    }

    /// Validates an `aor` parameter: a sip: or sips: URI.
    enum Address {
        case valid(String)
        case invalid(Response)
    }

    static func address(_ request: Request) -> Address {
        guard let aor = request.uri.queryParameters["aor"].map(String.init), !aor.isEmpty else {
            return .invalid(error("missing parameter 'aor' (a sip: or sips: address)"))
        }
        guard let uri = SIPURI(aor), uri.isSIP, normalizedAOR(uri) != nil else {
            return .invalid(error("parameter 'aor' is not a sip: or sips: address: '\(aor)'"))
        }
        return .valid(aor)
    }

    /// Who may use the API: the bearer token, and the host names (besides IP literals and
    /// `localhost`) a `Host` header may carry.
    struct Access: Sendable {
        var token: String
        var hostNames: Set<String>
        /// Where the token is kept, for the 401's message.
        var tokenFile: String

        init(token: String, tokenFile: String, adminHost: String) {
            self.token = token
            self.tokenFile = tokenFile
            hostNames = ["localhost", adminHost.lowercased()]
        }
    }

    /// Whether a `Host` value (`name`, `name:port`, `IPv4:port`, `[IPv6]:port`) names this
    /// server: an IP literal or one of `names`. Absent or malformed: no.
    static func hostAllowed(_ host: String?, names: Set<String>) -> Bool {
        guard let host, !host.isEmpty else { return false }
        var name = Substring(host)
        if name.hasPrefix("[") {
            guard let close = name.firstIndex(of: "]") else { return false }
            let rest = name[name.index(after: close)...]
            guard rest.isEmpty || (rest.hasPrefix(":") && rest.dropFirst().allSatisfy({ $0.isASCII && $0.isNumber })) else { return false }
            name = name[name.index(after: name.startIndex)..<close]
            return isIPLiteral(String(name))
        }
        if let colon = name.firstIndex(of: ":") {
            let port = name[name.index(after: colon)...]
            guard port.allSatisfy({ $0.isASCII && $0.isNumber }) else { return false }
            name = name[..<colon]
        }
        let text = String(name).lowercased()
        if text.hasSuffix("."), names.contains(String(text.dropLast())) { return true }
        return isIPLiteral(text) || names.contains(text)
    }

    static func isIPLiteral(_ s: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return s.withCString { inet_pton(AF_INET, $0, &v4) == 1 || inet_pton(AF_INET6, $0, &v6) == 1 }
    }

    /// Compares without an early exit, so the time taken says nothing about the token.
    static func tokenMatches(_ given: Substring, _ token: String) -> Bool {
        let a = Array(given.utf8), b = Array(token.utf8)
        var diff = UInt8(a.count == b.count ? 0 : 1)
        for i in 0..<b.count { diff |= (i < a.count ? a[i] : 0) ^ b[i] }
        return diff == 0
    }

    /// The Host check on every route, the token on every route but `/health`.
    struct Guard<Context: RequestContext>: RouterMiddleware {
        let access: Access

        func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
            guard AdminAPI.hostAllowed(request.head.authority, names: access.hostNames) else {
                let given = request.head.authority.map { "'\($0)'" } ?? "missing"
                return AdminAPI.error("Host \(given) is not this server: use an IP address or localhost", status: .misdirectedRequest)
            }
            if request.uri.path != "/health" {
                let header = request.headers[.authorization] ?? ""
                guard header.lowercased().hasPrefix("bearer "),
                      AdminAPI.tokenMatches(header.dropFirst(7).drop { $0 == " " }, access.token) else {
                    var r = AdminAPI.error(header.isEmpty
                        ? "missing access token: send 'Authorization: Bearer TOKEN' (the token is in \(access.tokenFile))"
                        : "wrong access token (the token is in \(access.tokenFile))", status: .unauthorized)
                    r.headers[.wwwAuthenticate] = "Bearer realm=\"sip-registrar\""
                    return r
                }
            }
            return try await next(request, context)
        }
    }

    static func router(registrar: Registrar, dispatcher: Dispatcher, metrics: ServerMetrics, localNode: String? = nil,
                       clock: any RegistrarClock, access: Access) -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: Guard(access: access))
        router.get("health") { _, _ -> Response in
            json(["status": "ok", "bindings": String(registrar.bindingCount)])
        }
        router.get("metrics") { _, _ -> Response in
            metrics.refresh(registrar: registrar, dispatcher: dispatcher)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                            body: .init(byteBuffer: ByteBuffer(string: metrics.text())))
        }
        router.get("v1/bindings") { request, _ -> Response in
            let now = clock.nowMilliseconds()
            if request.uri.queryParameters["aor"] != nil {
                switch address(request) {
                case .invalid(let r): return r
                case .valid(let aor):
                    return json(BindingsJSON(aor: aor, contacts: registrar.lookup(aor).map { contact($0, now: now, localNode: localNode) }))
                }
            }
            let q = request.uri.queryParameters
            var offset = 0, limit = 100
            if let o = q["offset"] {
                guard let n = Int(o), n >= 0 else { return error("parameter 'offset' must be a whole number ≥ 0") }
                offset = n
            }
            if let l = q["limit"] {
                guard let n = Int(l), (1...1000).contains(n) else { return error("parameter 'limit' must be between 1 and 1000") }
                limit = n
            }
            for (key, _) in q where !["offset", "limit"].contains(String(key)) {
                return error("unknown parameter '\(key)'")
            }
            let page = registrar.allBindings(offset: offset, limit: limit)
            return json(PageJSON(total: page.total, offset: offset, limit: limit,
                                 contacts: page.bindings.map { contact($0, now: now, withAOR: true, localNode: localNode) }))
        }
        router.delete("v1/bindings") { request, _ -> Response in
            switch address(request) {
            case .invalid(let r): return r
            case .valid(let aor):
                do {
                    let removed = try await registrar.removeAll(address: aor)
                    return json(["aor": aor, "removed": String(removed.count)])
                } catch {
                    return AdminAPI.error("the store could not remove the bindings: \(error)", status: .serviceUnavailable)
                }
            }
        }
        return router
    }
}

/// The admin API's access token: one line of 64 hex digits in a file readable by its owner
/// only (mode 600), made at the first start. `sip-registrar lookup` reads the same file.
package enum AdminToken {
    /// Reads the token at `path`; when there is no file, makes one (random, mode 600, with its
    /// folder). A file that others may read, or that holds no usable token, is an error naming it.
    package static func loadOrCreate(path: String) throws(ConfigurationError) -> (token: String, created: Bool) {
        if access(path, F_OK) != 0 {
            let created = try create(path)
            return (try read(path, checkMode: true), created)
        }
        return (try read(path, checkMode: true), false)
    }

    /// The token in `path`. With `checkMode`, a file readable or writable by group or others is refused.
    package static func read(_ path: String, checkMode: Bool = false) throws(ConfigurationError) -> String {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw ConfigurationError("admin_token_file \(path): cannot read it (\(String(cString: strerror(errno))))") }
        defer { close(fd) }
        if checkMode, let mode = (try? FileManager.default.attributesOfItem(atPath: path))?[.posixPermissions] as? Int,
           mode & 0o077 != 0 {
            throw ConfigurationError("admin_token_file \(path): mode \(String(mode & 0o777, radix: 8)) lets others read the token; chmod 600 it")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 512)
        while bytes.count < 4096 {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            bytes += chunk[0..<n]
        }
        let line = bytes.prefix { $0 != 0x0a && $0 != 0x0d }
        guard line.count >= 16, line.count <= 1024, line.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else {
            throw ConfigurationError("admin_token_file \(path): no token in it (one line of at least 16 printable characters)")
        }
        return String(decoding: line, as: UTF8.self)
    }

    /// Writes a new random token to a temporary file (O_EXCL, O_NOFOLLOW, mode 600) and links
    /// it into place, so that the file appears complete or not at all; when another process won
    /// the race, its token stays. Returns whether this call made the file.
    static func create(_ path: String) throws(ConfigurationError) -> Bool {
        if let slash = path.lastIndex(of: "/") {
            let dir = String(path[..<slash])
            if !dir.isEmpty { SQLiteBindingStore.makeDirectories(dir) }
        }
        let random: [UInt8]
        do {
            random = try OpenSSLHashing.randomBytes(32)
        } catch {
            throw ConfigurationError("admin_token_file \(path): \(error)")
        }
        let text = random.map { b in (b < 16 ? "0" : "") + String(b, radix: 16) }.joined() + "\n"
        let tmp = path + ".tmp.\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConfigurationError("admin_token_file \(path): cannot create it (\(String(cString: strerror(errno))))") }
        let bytes = Array(text.utf8)
        let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress, $0.count) }
        let synced = fsync(fd) == 0
        close(fd)
        defer { unlink(tmp) }
        guard n == bytes.count, synced else {
            throw ConfigurationError("admin_token_file \(path): cannot write it (\(String(cString: strerror(errno))))")
        }
        if link(tmp, path) == 0 { return true }
        if errno == EEXIST { return false }
        throw ConfigurationError("admin_token_file \(path): cannot create it (\(String(cString: strerror(errno))))")
    }
}
