import Foundation
import Hummingbird
import NIOCore
import SIPMessage
import SIPRegistrar
import SIPTransport

/// The admin HTTP API (loopback by default):
/// `GET /v1/bindings?aor=ADDR`, `GET /v1/bindings?offset=&limit=`, `DELETE /v1/bindings?aor=ADDR`,
/// `GET /health`, `GET /metrics`. Bad parameters get 400 with a JSON error.
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

    static func router(registrar: Registrar, dispatcher: Dispatcher, metrics: ServerMetrics, localNode: String? = nil,
                       clock: any RegistrarClock) -> Router<BasicRequestContext> {
        let router = Router()
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
