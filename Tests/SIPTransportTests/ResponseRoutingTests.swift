import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SIPMessage
@testable import SIPTransport
import SIPTestSupport
import Testing

/// RFC 3261 18.2.1/18.2.2 and RFC 3581: answers go where the request really came from,
/// whatever its Via says.
@Suite(.serialized) struct ResponseRoutingTests {
    /// A REGISTER from `peer` whose Via names `sentBy` and carries `params`.
    func hostile(sentBy: String, params: String, branch: String = "z9hG4bK-\(UUID().uuidString)") -> String {
        register(sentBy: sentBy, branch: branch).replacingOccurrences(of: ";branch=\(branch);rport",
                                                                       with: ";branch=\(branch)\(params)")
    }

    @Test func aReceivedWrittenByTheClientIsReplacedAndNotFollowed() async throws {
        let h = try await Harness.start(tls: false)
        let peer = try await UDPPeer()
        // A decoy on another loopback address, same port: where a followed `received` would send the answer.
        let decoy = try await UDPPeer(host: "127.0.0.2", port: peer.port)
        try await peer.send(hostile(sentBy: "127.0.0.1:\(peer.port)", params: ";received=127.0.0.2"), to: h.udp)
        let got = await peer.waitFor(1)
        #expect(got.first?.hasPrefix("SIP/2.0 200 OK\r\n") == true)
        #expect(got.first?.contains(";received=127.0.0.1") == true, "\(got)")
        try await Task.sleep(for: .milliseconds(100))
        #expect(decoy.received.withLockedValue { $0 }.isEmpty)
        #expect(h.receiver.requests.first.map { (try? $0.headers.topVia)??.received } == "127.0.0.1")
        await decoy.close()
        await peer.close()
        await h.stop()
    }

    @Test func anRportValueWrittenByTheClientBecomesTheRealPort() async throws {
        let h = try await Harness.start(tls: false)
        let peer = try await UDPPeer()
        let decoy = try await UDPPeer()
        try await peer.send(hostile(sentBy: "127.0.0.1:\(peer.port)", params: ";rport=\(decoy.port)"), to: h.udp)
        let got = await peer.waitFor(1)
        #expect(got.first?.contains(";rport=\(peer.port)") == true, "\(got)")
        try await Task.sleep(for: .milliseconds(100))
        #expect(decoy.received.withLockedValue { $0 }.isEmpty)
        await decoy.close()
        await peer.close()
        await h.stop()
    }

    @Test func aUDPRequestWithATCPViaIsAnsweredOverUDPAndOpensNoConnection() async throws {
        let h = try await Harness.start(tls: false)
        let peer = try await UDPPeer()
        let listener = try await TCPListener()
        // The Via asks for TCP to a listener: following it would be a server-side request forgery.
        let text = register(transport: "TCP", sentBy: "127.0.0.1:\(listener.port)")
        try await peer.send(text, to: h.udp)
        let got = await peer.waitFor(1)
        #expect(got.first?.hasPrefix("SIP/2.0 200 OK\r\n") == true, "\(got)")
        try await Task.sleep(for: .milliseconds(200))
        #expect(listener.accepted.withLockedValue { $0 } == 0)
        #expect(h.dispatcher.openConnections(.tcp) == 0)
        await listener.close()
        await peer.close()
        await h.stop()
    }

    @Test func maddrIsNotFollowed() async throws {
        let h = try await Harness.start(tls: false)
        let peer = try await UDPPeer()
        let decoy = try await UDPPeer(host: "127.0.0.2", port: peer.port)
        try await peer.send(hostile(sentBy: "127.0.0.1:\(peer.port)", params: ";maddr=127.0.0.2"), to: h.udp)
        let got = await peer.waitFor(1)
        #expect(got.first?.hasPrefix("SIP/2.0 200 OK\r\n") == true, "\(got)")
        try await Task.sleep(for: .milliseconds(100))
        #expect(decoy.received.withLockedValue { $0 }.isEmpty)
        await decoy.close()
        await peer.close()
        await h.stop()
    }

    /// RFC 4475 3.1.2.1 (badinv01): a Via with empty parameters is a 400, sent to the source.
    @Test func emptyViaParametersAre400() async throws {
        let h = try await Harness.start(tls: false)
        let peer = try await UDPPeer()
        let text = [
            "INVITE sip:user@example.com SIP/2.0",
            "To: sip:j.user@example.com",
            "From: sip:caller@example.net;tag=134161461246",
            "Max-Forwards: 7",
            "Call-ID: badinv01.0ha0isndaksdjasdf3234nas",
            "CSeq: 8 INVITE",
            "Via: SIP/2.0/UDP 192.0.2.15;;,;,,",
            "Contact: \"Joe\" <sip:joe@example.org>;;;;",
            "Content-Length: 0",
            "Content-Type: application/sdp",
        ].joined(separator: "\r\n") + "\r\n\r\n"
        try await peer.send(text, to: h.udp)
        let got = await peer.waitFor(1)
        #expect(got.first?.hasPrefix("SIP/2.0 400 Invalid Via Header\r\n") == true, "\(got)")
        #expect(h.receiver.count == 0)
        await peer.close()
        await h.stop()
    }

    /// Connections this server opens count against the per-address limit like accepted ones.
    @Test func outboundConnectionsCountAgainstTheLimits() async throws {
        var config = TransportConfiguration(maxConnectionsPerIP: 1, limitExemptions: try IPAddressSet([]))
        config.t1 = .milliseconds(5)
        let h = try await Harness.start(config, tls: false)
        let a = try await TCPListener()
        let b = try await TCPListener()
        func options(_ port: Int, _ id: String) throws -> (SIPRequest, SIPURI) {
            let uri = try #require(SIPURI("sip:bob@127.0.0.1:\(port);transport=tcp"))
            var headers = SIPHeaders()
            headers.add(.from, "<sip:registrar@example.com>;tag=r1")
            headers.add(.to, "<sip:bob@example.com>")
            headers.add(.callID, id)
            headers.add(.cseq, "1 OPTIONS")
            return (SIPRequest(method: .options, uri: uri, headers: headers), uri)
        }
        let (first, firstURI) = try options(a.port, "limit-1")
        // Nobody answers: Timer F (64·T1) ends it; the connection stays open.
        await #expect(throws: DispatcherError.self) { try await h.dispatcher.send(first, to: firstURI) }
        #expect(a.accepted.withLockedValue { $0 } == 1)
        let (second, secondURI) = try options(b.port, "limit-2")
        do {
            _ = try await h.dispatcher.send(second, to: secondURI)
            Issue.record("a second connection to the same address was opened past the limit")
        } catch let error as DispatcherError {
            #expect("\(error)".contains("per-IP connection limit"), "\(error)")
        }
        #expect(b.accepted.withLockedValue { $0 } == 0)
        #expect(h.dispatcher.counterValues[.connectionsRefusedPerIPLimit] == 1)
        await a.close()
        await b.close()
        await h.stop()
    }

    @Test func tlsLegsShareOneClientContext() async throws {
        let d = Dispatcher(group: MultiThreadedEventLoopGroup.singleton)
        _ = try await d.bindTLS(host: "127.0.0.1", port: 0, contexts: try TransportCerts.serverStore())
        _ = try await d.bindTLS(host: "127.0.0.1", port: 0, contexts: try TransportCerts.serverStore())
        let clients = d.legs.withLockedValue { $0.stream.compactMap { $0.tls?.client.map(ObjectIdentifier.init) } }
        #expect(clients.count == 2 && Set(clients).count == 1)
        await d.shutdown()
    }
}
