import SIPMessage
@testable import SIPTransport
import Testing

/// The per-IP connection count keys IPv6 peers by their /64, like every other per-source limit.
@Suite struct ConnectionLimitKeyTests {
    @Test func ipv6PeersInOneSlash64ShareTheirConnectionBudget() {
        let table = ConnectionTable()
        #expect(table.admit(ip: "2001:db8:5:6::1", maxTotal: 10, maxPerIP: 2) == .admitted)
        #expect(table.admit(ip: "2001:db8:5:6:ffff::2", maxTotal: 10, maxPerIP: 2) == .admitted)
        #expect(table.admit(ip: "2001:db8:5:6::3", maxTotal: 10, maxPerIP: 2) == .perIPLimit)
        // Another /64 has its own budget; so has each IPv4 address.
        #expect(table.admit(ip: "2001:db8:5:7::1", maxTotal: 10, maxPerIP: 2) == .admitted)
        #expect(table.admit(ip: "192.0.2.1", maxTotal: 10, maxPerIP: 1) == .admitted)
        #expect(table.admit(ip: "::ffff:192.0.2.1", maxTotal: 10, maxPerIP: 1) == .perIPLimit)
        #expect(table.admit(ip: "192.0.2.2", maxTotal: 10, maxPerIP: 1) == .admitted)
        // A slot released under any address of the /64 frees the shared count.
        table.release(ip: "2001:db8:5:6::1")
        #expect(table.admit(ip: "2001:db8:5:6::3", maxTotal: 10, maxPerIP: 2) == .admitted)
    }
}
