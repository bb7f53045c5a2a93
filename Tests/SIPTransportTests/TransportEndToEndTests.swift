import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import SIPMessage
import SIPTLS
@testable import SIPTransport
import SIPTestSupport
import Testing

@Suite(.serialized) struct TransportEndToEndTests {
    @Test func udpRequestIsAnsweredToReceivedAndRport() async throws {
        let h = try await Harness.start()
        let peer = try await UDPPeer()
        // sent-by names a port nobody listens on; rport makes the answer go to the source port.
        try await peer.send(register(sentBy: "192.0.2.99:9999"), to: h.udp)
        let got = await peer.waitFor(1)
        #expect(got.count == 1)
        #expect(got.first?.hasPrefix("SIP/2.0 200 OK\r\n") == true)
        #expect(got.first?.contains(";rport=\(peer.port);received=127.0.0.1") == true)
        let source = try #require(h.receiver.sources.first)
        #expect(source.transport == .udp && source.remotePort == peer.port && source.localPort == h.udp)
        await peer.close()
        await h.stop()
    }

    @Test func ipv6Legs() async throws {
        let d = Dispatcher(group: MultiThreadedEventLoopGroup.singleton)
        let r = Answer200()
        d.addReceiver(r)
        guard let udp = try? await d.bindUDP(host: "::1", port: 0), let tcp = try? await d.bindTCP(host: "::1", port: 0) else {
            // No IPv6 loopback on this machine: nothing to test.
            await d.shutdown()
            return
        }
        let (_, out) = try runCombined("/bin/bash", ["-c", """
            exec 3<>/dev/tcp/::1/\(tcp.port ?? 0); printf '\(register(transport: "TCP", sentBy: "[::1]:9").replacingOccurrences(of: "\r\n", with: "\\r\\n"))' >&3; timeout 3 head -c 12 <&3
            """], timeout: 5)
        #expect(out.hasPrefix("SIP/2.0 200"), "\(out)")
        #expect(r.sources.first?.remoteHost == "::1")
        #expect(udp.ipAddress == "::1")
        await d.shutdown()
    }

    @Test func nineThousandByteRegisterOverUDP() async throws {
        let h = try await Harness.start()
        let peer = try await UDPPeer()
        let body = String(repeating: "x", count: 8_700)
        let text = register(sentBy: "127.0.0.1:\(peer.port)", extra: ["Content-Type: text/plain"], body: body)
        #expect(text.utf8.count > 9_000)
        try await peer.send(text, to: h.udp)
        let got = await peer.waitFor(1)
        #expect(got.first?.hasPrefix("SIP/2.0 200") == true)
        #expect(h.receiver.requests.first?.body.count == 8_700)
        await peer.close()
        await h.stop()
    }

    @Test func udpRetransmissionIsAnsweredFromTheCache() async throws {
        let h = try await Harness.start(delay: .milliseconds(200))
        let peer = try await UDPPeer()
        let text = register(sentBy: "127.0.0.1:\(peer.port)", branch: "z9hG4bK-retrans-1")
        try await peer.send(text, to: h.udp)
        try await Task.sleep(for: .milliseconds(50))
        try await peer.send(text, to: h.udp)  // while in progress: absorbed
        // (On a loaded machine the second copy may arrive after the answer: then it is answered from the cache.)
        let first = await peer.waitFor(1)
        #expect(first.count >= 1, "no answer to the first copy")
        // A second copy that arrived after the answer is answered from the cache too: let it land
        // before counting, so that the next answer is not confused with it.
        let before = await peer.settled()
        try await peer.send(text, to: h.udp)  // after the answer: the cached answer again
        _ = await peer.waitFor(before + 1)
        let all = await peer.settled()
        #expect(h.receiver.count == 1)
        #expect(all == before + 1, "answers: \(all), expected \(before + 1)")
        #expect(Set(peer.received.withLockedValue { $0 }).count == 1, "the cached answer differs from the first")
        #expect(h.dispatcher.counterValues[.retransmissionsAbsorbed] == 2)
        // RFC 2543 fallback key: no magic cookie.
        let old = register(sentBy: "127.0.0.1:\(peer.port)", branch: "oldstyle1", callID: "rfc2543")
        let n = peer.received.withLockedValue { $0.count }
        try await peer.send(old, to: h.udp)
        _ = await peer.waitFor(n + 1)
        try await peer.send(old, to: h.udp)
        _ = await peer.waitFor(n + 2)
        #expect(h.receiver.count == 2)
        await peer.close()
        await h.stop()
    }

    @Test func unparsableRequestGets400NamingTheFault() async throws {
        let h = try await Harness.start()
        let peer = try await UDPPeer()
        let bad = register(sentBy: "127.0.0.1:\(peer.port)").replacingFirst("CSeq: 1 REGISTER", "CSeq: 1 INVITE")
        try await peer.send(bad, to: h.udp)
        let got = await peer.waitFor(1)
        #expect(got.first?.hasPrefix("SIP/2.0 400 CSeq Method Does Not Match Request Method\r\n") == true)
        try await peer.send("garbage\r\n\r\n", to: h.udp)
        try await Task.sleep(for: .milliseconds(100))
        #expect(h.dispatcher.counterValues[.parseErrors] == 2)
        #expect(h.receiver.count == 0)
        await peer.close()
        await h.stop()
    }

    @Test func tcpPipelinedSplitAndKeepAlive() async throws {
        let h = try await Harness.start()
        let peer = try await TCPPeer.connect(port: h.tcp)
        let a = register(transport: "TCP", sentBy: "127.0.0.1:1")
        let b = register(transport: "TCP", sentBy: "127.0.0.1:1")
        try await peer.send(a + b)
        let both = await peer.waitFor("SIP/2.0 200 OK", count: 2)
        #expect(both.components(separatedBy: "SIP/2.0 200 OK").count - 1 == 2)
        // Split in the middle of the head.
        let c = register(transport: "TCP", sentBy: "127.0.0.1:1")
        let mid = c.index(c.startIndex, offsetBy: 40)
        try await peer.send(String(c[..<mid]))
        try await Task.sleep(for: .milliseconds(50))
        try await peer.send(String(c[mid...]))
        _ = await peer.waitFor("SIP/2.0 200 OK", count: 3)
        // RFC 5626 keep-alive.
        try await peer.send("\r\n\r\n")
        let text = await peer.waitFor("\r\n\r\n\r\n", count: 1, timeout: .seconds(1))
        #expect(h.receiver.count == 3)
        #expect(text.hasSuffix("\r\n"))
        #expect(h.dispatcher.counterValues[.keepAlivePings] == 1)
        let sources = h.receiver.sources
        #expect(Set(sources.map(\.flowID)).count == 1 && sources[0].transport == .tcp)
        try? await peer.channel.close()
        await h.stop()
    }

    @Test func tcpFramingErrorAnswers400AndCloses() async throws {
        let h = try await Harness.start()
        let peer = try await TCPPeer.connect(port: h.tcp)
        try await peer.send(register(transport: "TCP").replacingFirst("Content-Length: 0", "Content-Length: -5"))
        let text = await peer.waitFor("SIP/2.0 400 Invalid Content-Length")
        #expect(text.hasPrefix("SIP/2.0 400 Invalid Content-Length\r\n"))
        try await peer.channel.closeFuture.get()
        #expect(h.dispatcher.counterValues[.framingErrors] == 1)
        await h.stop()
    }

    @Test func routeNamingThisServerIsStripped() async throws {
        let h = try await Harness.start()
        let peer = try await UDPPeer()
        let text = register(sentBy: "127.0.0.1:\(peer.port)",
                            extra: ["Route: <sip:127.0.0.1:\(h.udp);lr>, <sip:proxy.example.net;lr>"])
        try await peer.send(text, to: h.udp)
        _ = await peer.waitFor(1)
        let routes = h.receiver.requests.first?.headers.splitValues(.route) ?? []
        #expect(routes == ["<sip:proxy.example.net;lr>"])
        let other = register(sentBy: "127.0.0.1:\(peer.port)", extra: ["Route: <sip:elsewhere.example.net;lr>"])
        try await peer.send(other, to: h.udp)
        _ = await peer.waitFor(2)
        #expect(h.receiver.requests.last?.headers.splitValues(.route) == ["<sip:elsewhere.example.net;lr>"])
        await peer.close()
        await h.stop()
    }

    @Test func tlsWithOpenSSLClient() async throws {
        let h = try await Harness.start()
        let text = register(transport: "TLS", sentBy: "127.0.0.1:1", extra: ["Route: <sip:127.0.0.1:\(h.tls);transport=tls;lr>"])
        let out = try runUntil("/usr/bin/openssl", [
            "s_client", "-connect", "127.0.0.1:\(h.tls)", "-CAfile", TransportCerts.dir + "/ca.pem", "-verify_return_error",
            "-servername", "localhost", "-quiet",
        ], input: text, needle: "SIP/2.0 200 OK")
        #expect(out.contains("SIP/2.0 200 OK"), "\(h.dispatcher.counterValues) \(out.suffix(600))")
        let source = try #require(h.receiver.sources.first)
        #expect(source.transport == .tls && source.flowID != nil)
        #expect(h.receiver.requests.first?.headers.contains(.route) == false)
        await h.stop()
    }

    @Test func responseToAClosedConnectionGoesToTheViaSentBy() async throws {
        let h = try await Harness.start(delay: .milliseconds(300))
        let listener = try await TCPListener()
        let peer = try await TCPPeer.connect(port: h.tcp)
        try await peer.send(register(transport: "TCP", sentBy: "127.0.0.1:\(listener.port)"))
        try await Task.sleep(for: .milliseconds(50))
        try await peer.channel.close()
        let text = await listener.waitFor("SIP/2.0 200 OK")
        #expect(text.hasPrefix("SIP/2.0 200 OK"))
        await listener.close()
        await h.stop()
    }

    @Test func reusesTheConnectionThePeerOpened() async throws {
        let h = try await Harness.start()
        let peer = try await TCPPeer.connect(port: h.tcp)
        try await peer.send(register(transport: "TCP", sentBy: "127.0.0.1:1"))
        _ = await peer.waitFor("SIP/2.0 200 OK")
        let localPort = peer.channel.localAddress?.port ?? 0
        let options = try #require(SIPURI("sip:alice@127.0.0.1:\(localPort);transport=tcp"))
        var headers = SIPHeaders()
        headers.add(.from, "<sip:registrar@example.com>;tag=r1")
        headers.add(.to, "<sip:alice@example.com>")
        headers.add(.callID, "reuse-1")
        headers.add(.cseq, "1 OPTIONS")
        let request = SIPRequest(method: .options, uri: options, headers: headers)
        let sending = Task { try await h.dispatcher.send(request, to: options) }
        let seen = await peer.waitFor("OPTIONS sip:alice@127.0.0.1")
        #expect(seen.contains("OPTIONS sip:alice@127.0.0.1:\(localPort);transport=tcp SIP/2.0"))
        // Answer it on the same connection.
        let requestText = String(seen[seen.range(of: "OPTIONS")!.lowerBound...])
        guard case .request(let parsed)? = try? SIPMessageParser().parse(requestText) else {
            Issue.record("the peer got no parsable OPTIONS")
            return
        }
        let reply = SIPResponse(to: parsed, statusCode: 200, toTag: "p")
        try await peer.send(String(decoding: reply.serialized(), as: UTF8.self))
        let response = try await sending.value
        #expect(response.statusCode == 200)
        #expect(h.dispatcher.openConnections(.tcp) == 1)
        try? await peer.channel.close()
        await h.stop()
    }

    @Test func outboundConnectionIsReusedAndSIPSNeverDowngrades() async throws {
        let h = try await Harness.start(tls: false)
        let listener = try await TCPListener()
        let uri = try #require(SIPURI("sip:bob@127.0.0.1:\(listener.port);transport=tcp"))
        var headers = SIPHeaders()
        headers.add(.from, "<sip:registrar@example.com>;tag=r1")
        headers.add(.to, "<sip:bob@example.com>")
        headers.add(.cseq, "1 OPTIONS")
        for i in 0..<2 {
            var h2 = headers
            h2.add(.callID, "out-\(i)")
            let request = SIPRequest(method: .options, uri: uri, headers: h2)
            // The listener never answers: Timer F would fire; only the connection count matters here.
            let task = Task { try? await h.dispatcher.send(request, to: uri) }
            _ = await listener.waitFor("Call-ID: out-\(i)")
            task.cancel()
        }
        #expect(listener.accepted.withLockedValue { $0 } == 1)
        let sips = try #require(SIPURI("sips:bob@127.0.0.1:\(listener.port)"))
        await #expect(throws: LegSelectionError.sipsNeedsTLSLeg) {
            try await h.dispatcher.send(SIPRequest(method: .options, uri: sips, headers: headers), to: sips)
        }
        await listener.close()
        await h.stop()
    }

    @Test func udpClientTransactionRetransmitsUntilAnswered() async throws {
        var config = TransportConfiguration()
        config.t1 = .milliseconds(50)
        let h = try await Harness.start(config, tls: false)
        let peer = try await UDPPeer()
        let uri = try #require(SIPURI("sip:bob@127.0.0.1:\(peer.port)"))
        var headers = SIPHeaders()
        headers.add(.from, "<sip:registrar@example.com>;tag=r1")
        headers.add(.to, "<sip:bob@example.com>")
        headers.add(.callID, "udp-client-1")
        headers.add(.cseq, "1 OPTIONS")
        let task = Task { try await h.dispatcher.send(SIPRequest(method: .options, uri: uri, headers: headers), to: uri) }
        let copies = await peer.waitFor(3)
        #expect(copies.count >= 3 && copies[0] == copies[1])
        guard case .request(let parsed)? = try? SIPMessageParser().parse(copies[0]) else {
            Issue.record("unparsable")
            return
        }
        try await peer.send(String(decoding: SIPResponse(to: parsed, statusCode: 200, toTag: "b").serialized(), as: UTF8.self),
                            to: h.udp)
        #expect(try await task.value.statusCode == 200)
        // Nobody answers: Timer F (64·T1 = 3.2 s here).
        var h2 = headers
        h2.set(.callID, "udp-client-2")
        let silent = try #require(SIPURI("sip:nobody@127.0.0.1:9"))
        await #expect(throws: DispatcherError.self) {
            try await h.dispatcher.send(SIPRequest(method: .options, uri: silent, headers: h2), to: silent)
        }
        await peer.close()
        await h.stop()
    }

    @Test func connectionLimitsAndIdleTimeout() async throws {
        var config = TransportConfiguration()
        config.maxConnectionsPerIP = 2
        config.limitExemptions = .empty  // loopback is exempt by default
        config.idleTimeoutBeforeFirstMessage = .milliseconds(300)
        let h = try await Harness.start(config, tls: false)
        let a = try await TCPPeer.connect(port: h.tcp)
        let b = try await TCPPeer.connect(port: h.tcp)
        try await Task.sleep(for: .milliseconds(50))
        let c = try await TCPPeer.connect(port: h.tcp)
        try await c.channel.closeFuture.get()
        #expect(h.dispatcher.counterValues[.connectionsRefusedPerIPLimit] == 1)
        // a sends a valid message; b stays silent and is closed by the first-message timer.
        try await a.send(register(transport: "TCP", sentBy: "127.0.0.1:1"))
        _ = await a.waitFor("SIP/2.0 200 OK")
        try await b.channel.closeFuture.get()
        #expect(a.channel.isActive)
        #expect(h.dispatcher.counterValues[.connectionsClosedIdle] == 1)
        try? await a.channel.close()
        await h.stop()
    }

    @Test func tlsHandshakeRatePerIPTriggersAndLifts() async throws {
        var config = TransportConfiguration()
        config.maxTLSHandshakesPerIPPerSecond = 3
        config.limitExemptions = .empty
        let h = try await Harness.start(config)
        var peers: [TCPPeer] = []
        for _ in 0..<6 { peers.append(try await TCPPeer.connect(port: h.tls)) }
        // The connections beyond the rate are closed at once, before any handshake.
        var closed = 0
        for p in peers {
            try await Task.sleep(for: .milliseconds(20))
            if !p.channel.isActive { closed += 1 }
        }
        let refused = h.dispatcher.counterValues[.connectionsRefusedHandshakeRate] ?? 0
        #expect(refused >= 2 && refused <= 3, "refused \(refused)")
        #expect(closed == refused)
        // A new second: the source may connect again.
        try await Task.sleep(for: .milliseconds(1_100))
        let later = try await TCPPeer.connect(port: h.tls)
        try await Task.sleep(for: .milliseconds(100))
        #expect(later.channel.isActive)
        #expect(h.dispatcher.counterValues[.connectionsRefusedHandshakeRate] == refused)
        for p in peers + [later] { try? await p.channel.close() }
        await h.stop()
    }

    @Test func loopbackIsExemptFromPerIPLimitsByDefault() async throws {
        var config = TransportConfiguration()
        config.maxConnectionsPerIP = 1
        config.maxTLSHandshakesPerIPPerSecond = 1
        let h = try await Harness.start(config)
        var peers: [TCPPeer] = []
        for _ in 0..<3 { peers.append(try await TCPPeer.connect(port: h.tls)) }
        try await Task.sleep(for: .milliseconds(100))
        #expect(peers.allSatisfy { $0.channel.isActive })
        #expect(h.dispatcher.counterValues[.connectionsRefusedPerIPLimit] == nil)
        for p in peers { try? await p.channel.close() }
        await h.stop()
    }
}

/// Interop: Debian's sipp (no TLS in that build) against a dispatcher whose only receiver answers 200.
@Suite(.serialized) struct SippInteropTests {
    static let sippDir = PackageRoot.path("Tests/SIPTransportTests/sipp")

    @Test(arguments: [("options.xml", "u1", "UDP"), ("register.xml", "u1", "UDP"), ("options.xml", "t1", "TCP"),
                      ("register.xml", "t1", "TCP")])
    func sipp(scenario: String, mode: String, token: String) async throws {
        let h = try await Harness.start(tls: false)
        let port = token == "UDP" ? h.udp : h.tcp
        let (status, out) = try runCombined("/usr/bin/sipp", [
            "127.0.0.1:\(port)", "-sf", Self.sippDir + "/" + scenario, "-t", mode, "-key", "tp", token,
            "-i", "127.0.0.1", "-p", "0", "-m", "50", "-r", "100", "-l", "20", "-timeout", "20s", "-timeout_error",
            "-max_socket", "100", "-nostdin", "-trace_err", "-error_file", NSTemporaryDirectory() + "sipp-\(UUID()).err",
        ], timeout: 30)
        #expect(status == 0, "sipp exit \(status): \(out.suffix(800))")
        #expect(h.receiver.count == 50)
        await h.stop()
    }
}
