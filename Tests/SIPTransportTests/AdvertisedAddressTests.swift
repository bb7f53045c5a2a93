import NIOCore
import NIOPosix
import SIPMessage
import Testing
@testable import SIPTransport

/// The address the proxy writes into its Via and Record-Route: never a wildcard, never an
/// IPv4-mapped form, and what the peer can reach.
@Suite struct AdvertisedAddressTests {
    func withWildcardUDP(names: [String] = [], _ body: (Dispatcher, Int) throws -> Void) async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let d = Dispatcher(configuration: TransportConfiguration(localNames: names), group: group)
        let bound: Int
        do {
            bound = try await d.bindUDP(host: "::", port: 0).port ?? 0
        } catch {
            // No IPv6 on this machine: the IPv4 wildcard has the same rules.
            bound = try await d.bindUDP(host: "0.0.0.0", port: 0).port ?? 0
        }
        defer { Task { await d.shutdown(); try? await group.shutdownGracefully() } }
        try body(d, bound)
    }

    @Test func loopbackPeersGetLoopback() async throws {
        try await withWildcardUDP { d, port in
            #expect(d.advertisedLeg(.udp, peer: "::ffff:127.0.0.1")! == ("127.0.0.1", port))
            #expect(d.advertisedLeg(.udp, peer: "127.0.0.1")! == ("127.0.0.1", port))
            #expect(d.advertisedLeg(.tls, peer: "127.0.0.1") == nil, "no TLS leg")
        }
    }

    @Test func otherPeersGetAnInterfaceAddressNotTheWildcard() async throws {
        try await withWildcardUDP { d, port in
            let leg = try #require(d.advertisedLeg(.udp, peer: "192.0.2.7"))
            #expect(leg.port == port)
            #expect(leg.host != "0.0.0.0" && leg.host != "::" && !leg.host.hasPrefix("::ffff:"))
            #expect(d.interfaceAddresses.contains(leg.host) || leg.host == "127.0.0.1")
            // The address a connection arrived at wins over a guess.
            #expect(d.advertisedLeg(.udp, peer: "192.0.2.7", local: "::ffff:198.51.100.4")! == ("198.51.100.4", port))
        }
    }

    @Test func aConfiguredNameWins() async throws {
        try await withWildcardUDP(names: ["sip.example.com"]) { d, port in
            #expect(d.advertisedLeg(.udp, peer: "127.0.0.1")! == ("sip.example.com", port))
        }
    }

    @Test func mappedAddressesAreUnmapped() {
        #expect(Dispatcher.unmapped("::ffff:192.0.2.1") == "192.0.2.1")
        #expect(Dispatcher.unmapped("::FFFF:10.0.0.1") == "10.0.0.1")
        #expect(Dispatcher.unmapped("2001:db8::1") == "2001:db8::1")
        #expect(Dispatcher.unmapped("192.0.2.1") == "192.0.2.1")
    }
}
