import SIPMessage
import SIPRegistrar
import SIPTestSupport
import Testing

/// Net::SIP::Registrar's behaviour, table-driven: min/max expires, domain suffix
/// matching, `*`, ignoring non-REGISTER requests without a binding, and `query`
/// of an unknown address.
@Suite struct NetSIPParityTests {
    /// The README's synopsis compiles and works as written.
    @Test func synopsis() async throws {
        let dispatcher: (any SIPTimerScheduler)? = nil
        let registrar = try Registrar(dispatcher: dispatcher, minExpires: 10, maxExpires: 60,
                                      domains: ["example.com", "example.org"])
        var b = RegisterBuilder()
        b.expires = 3600
        let code = await registrar.receive(try b.request(), from: udp).statusCode
        #expect(code == 200)
        #expect(registrar.query("sip:alice@example.com") == ["sip:alice@192.0.2.10:5060"])
        _ = await registrar.expire()
    }

    @Test func defaultsAreNetSIPs() throws {
        let r = try Registrar(dispatcher: nil)
        #expect(r.configuration.minExpires == 30 && r.configuration.maxExpires == 300 && r.configuration.domains.isEmpty)
        let d = try Registrar(dispatcher: nil, domain: "example.com")
        #expect(d.configuration.domains == ["example.com"])
    }

    struct Row: Sendable, CustomTestStringConvertible {
        var domains: [String]
        var requestHost: String
        var expires: Int?
        var status: Int?  // nil: ignored, as Net::SIP's receive returns nothing
        var granted: Int?
        var testDescription: String { "\(domains) \(requestHost) \(String(describing: expires)) -> \(String(describing: status))" }
    }

    static let rows: [Row] = [
        Row(domains: [], requestHost: "anything.net", expires: 100, status: 200, granted: 100),
        Row(domains: ["*"], requestHost: "anything.net", expires: 100, status: 200, granted: 100),
        Row(domains: ["example.com"], requestHost: "example.com", expires: 100, status: 200, granted: 100),
        Row(domains: ["example.com"], requestHost: "sip.example.com", expires: 100, status: 200, granted: 100),
        Row(domains: ["example.com"], requestHost: "EXAMPLE.COM", expires: 100, status: 200, granted: 100),
        Row(domains: ["example.com"], requestHost: "badexample.com", expires: 100, status: nil, granted: nil),
        Row(domains: ["example.com"], requestHost: "example.org", expires: 100, status: nil, granted: nil),
        Row(domains: ["example.com", "example.org"], requestHost: "example.org", expires: 100, status: 200, granted: 100),
        Row(domains: [], requestHost: "example.com", expires: 10, status: 423, granted: nil),
        Row(domains: [], requestHost: "example.com", expires: 29, status: 423, granted: nil),
        Row(domains: [], requestHost: "example.com", expires: 30, status: 200, granted: 30),
        Row(domains: [], requestHost: "example.com", expires: 300, status: 200, granted: 300),
        Row(domains: [], requestHost: "example.com", expires: 3600, status: 200, granted: 300),
        Row(domains: [], requestHost: "example.com", expires: nil, status: 200, granted: 300),
        Row(domains: [], requestHost: "example.com", expires: 0, status: 200, granted: nil),
    ]

    @Test(arguments: rows)
    func table(row: Row) async throws {
        let r = try Registrar(dispatcher: nil, domains: row.domains)
        var b = RegisterBuilder()
        b.requestURI = "sip:\(row.requestHost)"
        b.to = "<sip:alice@\(row.requestHost)>"
        b.expires = row.expires
        let outcome = await r.receive(try b.request(), from: udp)
        #expect(outcome.statusCode == row.status)
        if case .respond(let response) = outcome, let granted = row.granted {
            #expect(response.contactList.first?.expires == granted)
        }
        if row.status == 423 {
            if case .respond(let response) = outcome { #expect(try response.headers.minExpires == 30) }
        }
    }

    @Test func foreignDomainCanBeAnswered404() async throws {
        let r = try Registrar(configuration: RegistrarConfiguration(domains: ["example.com"], rejectForeignDomains: true))
        var b = RegisterBuilder()
        b.requestURI = "sip:example.org"
        b.to = "<sip:alice@example.org>"
        #expect(await r.receive(try b.request(), from: udp).statusCode == 404)
        // The Request-URI is ours but the AOR's domain is not: always 404 (RFC 3261 10.3 step 3).
        let q = try Registrar(configuration: RegistrarConfiguration(domains: ["example.com"]))
        b.requestURI = "sip:example.com"
        #expect(await q.receive(try b.request(), from: udp).statusCode == 404)
    }

    @Test func nonRegisterWithoutBindingIsIgnored() async throws {
        let r = try Registrar(dispatcher: nil)
        let options = try SIPText.request("""
        OPTIONS sip:alice@example.com SIP/2.0
        Via: SIP/2.0/UDP 192.0.2.50;branch=z9hG4bKo
        From: <sip:bob@example.org>;tag=1
        To: <sip:alice@example.com>
        Call-ID: o-1
        CSeq: 1 OPTIONS
        Content-Length: 0


        """)
        #expect(await r.receive(options, from: udp).statusCode == nil)
    }

    @Test func queryOfUnknownOrBadAddress() throws {
        let r = try Registrar(dispatcher: nil)
        #expect(r.query("sip:nobody@example.com").isEmpty)
        #expect(r.query("not a uri").isEmpty)
        #expect(r.query("tel:+1555").isEmpty)
    }

    @Test func badConfigurationIsRefused() {
        #expect(throws: RegistrarConfigurationError.self) { try Registrar(dispatcher: nil, minExpires: 100, maxExpires: 10) }
        #expect(throws: RegistrarConfigurationError.self) { try Registrar(dispatcher: nil, minExpires: -1) }
        #expect(throws: RegistrarConfigurationError.self) {
            try Registrar(configuration: RegistrarConfiguration(maxContactsPerAOR: 0))
        }
        #expect(throws: RegistrarConfigurationError.self) { try Registrar(dispatcher: nil, domains: ["bad domain"]) }
    }
}
