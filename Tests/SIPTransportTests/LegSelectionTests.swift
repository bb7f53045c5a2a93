import SIPMessage
@testable import SIPTransport
import Testing

@Suite struct LegSelectionTests {
    static let all: Set<SIPTransportProtocol> = [.udp, .tcp, .tls]

    struct Row: Sendable, CustomTestStringConvertible {
        var uri: String
        var available: Set<SIPTransportProtocol>
        var size: Int
        var expected: Result<SendTarget, LegSelectionError>
        var testDescription: String { "\(uri) \(available.map(\.rawValue).sorted()) \(size)" }
    }

    static let rows: [Row] = [
        Row(uri: "sip:alice@192.0.2.1", available: all, size: 500, expected: .success(.init(transport: .udp, host: "192.0.2.1", port: 5060))),
        Row(uri: "sip:alice@192.0.2.1", available: all, size: 1301, expected: .success(.init(transport: .tcp, host: "192.0.2.1", port: 5060))),
        Row(uri: "sip:alice@192.0.2.1", available: [.udp], size: 5000, expected: .success(.init(transport: .udp, host: "192.0.2.1", port: 5060))),
        Row(uri: "sip:alice@192.0.2.1", available: [.tcp], size: 10, expected: .success(.init(transport: .tcp, host: "192.0.2.1", port: 5060))),
        Row(uri: "sip:alice@192.0.2.1:5070", available: all, size: 0, expected: .success(.init(transport: .udp, host: "192.0.2.1", port: 5070))),
        Row(uri: "sip:alice@192.0.2.1;transport=tcp", available: all, size: 0, expected: .success(.init(transport: .tcp, host: "192.0.2.1", port: 5060))),
        Row(uri: "sip:alice@192.0.2.1;transport=TLS", available: all, size: 0, expected: .success(.init(transport: .tls, host: "192.0.2.1", port: 5061))),
        Row(uri: "sip:alice@192.0.2.1;transport=udp", available: all, size: 9000, expected: .success(.init(transport: .udp, host: "192.0.2.1", port: 5060))),
        Row(uri: "sip:alice@192.0.2.1;transport=sctp", available: all, size: 0, expected: .failure(.unsupportedTransport("sctp"))),
        Row(uri: "sip:alice@192.0.2.1;transport=tls", available: [.udp, .tcp], size: 0, expected: .failure(.noLeg(.tls))),
        Row(uri: "sips:alice@192.0.2.1", available: all, size: 0, expected: .success(.init(transport: .tls, host: "192.0.2.1", port: 5061))),
        Row(uri: "sips:alice@192.0.2.1:6000", available: all, size: 0, expected: .success(.init(transport: .tls, host: "192.0.2.1", port: 6000))),
        Row(uri: "sips:alice@192.0.2.1;transport=tcp", available: all, size: 0, expected: .success(.init(transport: .tls, host: "192.0.2.1", port: 5061))),
        Row(uri: "sips:alice@192.0.2.1", available: [.udp, .tcp], size: 0, expected: .failure(.sipsNeedsTLSLeg)),
        Row(uri: "sips:alice@192.0.2.1;transport=udp", available: all, size: 0, expected: .failure(.sipsOverUDP)),
        Row(uri: "sip:alice@example.com;maddr=192.0.2.9", available: all, size: 0, expected: .success(.init(transport: .udp, host: "192.0.2.9", port: 5060))),
        Row(uri: "sip:alice@[2001:db8::1]:5080;transport=tcp", available: all, size: 0, expected: .success(.init(transport: .tcp, host: "2001:db8::1", port: 5080))),
        Row(uri: "sips:[::1]", available: all, size: 0, expected: .success(.init(transport: .tls, host: "::1", port: 5061))),
        Row(uri: "tel:+15551234", available: all, size: 0, expected: .failure(.notSIPURI("tel:+15551234"))),
        Row(uri: "sip:alice@Example.COM", available: [.tcp, .tls], size: 0, expected: .success(.init(transport: .tcp, host: "example.com", port: 5060))),
        // RFC 7118: transport=ws / wss pick the WebSocket legs; a sips: target never takes plain WS.
        Row(uri: "sip:a@x.invalid;transport=ws", available: all.union([.ws, .wss]), size: 0,
            expected: .success(.init(transport: .ws, host: "x.invalid", port: 5060))),
        Row(uri: "sip:a@x.invalid;transport=wss", available: all.union([.ws, .wss]), size: 0,
            expected: .success(.init(transport: .wss, host: "x.invalid", port: 5061))),
        Row(uri: "sips:a@x.invalid;transport=wss", available: all.union([.wss]), size: 0,
            expected: .success(.init(transport: .wss, host: "x.invalid", port: 5061))),
        Row(uri: "sips:a@x.invalid;transport=ws", available: all.union([.ws, .wss]), size: 0, expected: .failure(.sipsOverInsecureWebSocket)),
        Row(uri: "sip:a@x.invalid;transport=ws", available: all, size: 0, expected: .failure(.noLeg(.ws))),
    ]

    @Test(arguments: rows)
    func select(row: Row) throws {
        let uri = try #require(SIPURI(row.uri))
        let result = Result { () throws(LegSelectionError) -> SendTarget in
            try LegSelection.select(uri, available: row.available, messageSize: row.size)
        }
        #expect(result == row.expected)
    }
}
