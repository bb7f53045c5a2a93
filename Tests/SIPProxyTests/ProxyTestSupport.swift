import SIPMessage
@testable import SIPProxy
import SIPTestSupport

/// Messages and helpers shared by the proxy tests.
enum ProxyFixtures {
    /// A request the test writes; a fixture that does not parse is a bug in the test.
    static func request(_ text: String) -> SIPRequest {
        guard let r = try? SIPText.request(text) else { fatalError("fixture does not parse: \(text)") }
        return r
    }

    /// Alice calls bob@example.com through us (proxy.example.com, 192.0.2.1).
    static func invite(maxForwards: String? = "70", extra: String = "", uri: String = "sip:bob@example.com",
                       branch: String = "z9hG4bKnashds8", method: String = "INVITE") -> SIPRequest {
        var lines = [
            "\(method) \(uri) SIP/2.0",
            "Via: SIP/2.0/UDP pc33.atlanta.com;branch=\(branch)",
        ]
        if let maxForwards { lines.append("Max-Forwards: \(maxForwards)") }
        lines += [
            "To: Bob <sip:bob@example.com>",
            "From: Alice <sip:alice@atlanta.com>;tag=1928301774",
            "Call-ID: a84b4c76e66710",
            "CSeq: 314159 \(method)",
            "Contact: <sip:alice@pc33.atlanta.com>",
        ]
        if !extra.isEmpty { lines.append(extra) }
        lines += ["Content-Length: 0", "", ""]
        return request(lines.joined(separator: "\n"))
    }

    static let identity = ProxyIdentity(hosts: ["proxy.example.com", "192.0.2.1", "[2001:db8::1]"], ports: [5060, 5061],
                                        servesDomain: { $0 == "example.com" })

    static let udpLeg = ProxyLeg(transport: .udp, host: "192.0.2.1", port: 5060)
    static let tlsLeg = ProxyLeg(transport: .tls, host: "192.0.2.1", port: 5061)

    static func target(_ uri: String, q: Int? = nil, transport: SIPTransportProtocol = .udp, flowID: UInt64? = nil,
                       instance: String? = nil, regID: Int? = nil) -> ProxyTarget {
        guard let u = SIPURI(uri) else { fatalError("bad uri \(uri)") }
        return ProxyTarget(uri: u, q: q, instance: instance, regID: regID, flowID: flowID, transport: transport,
                           sourceHost: u.hostName, sourcePort: u.port ?? 5060)
    }

    /// A keyed test MAC (not cryptographic): FNV-1a over key and message, stretched to 32 bytes.
    static let testMAC: FlowTokenCodec.MAC = { key, message in
        var out: [UInt8] = []
        for round in 0..<4 {
            var h = FNV1a64()
            h.add([UInt8(round)] + key + message)
            for s in stride(from: 0, to: 64, by: 8) { out.append(UInt8(truncatingIfNeeded: h.value >> UInt64(s))) }
        }
        return out
    }

    static func validated(_ request: SIPRequest) -> ValidatedRequest {
        guard case .forward(let v) = ProxyRequestValidator(identity: identity).validate(request) else {
            fatalError("request rejected")
        }
        return v
    }
}
