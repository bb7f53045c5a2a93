import SIPMessage

enum MessageBenchmarks {
    /// A typical softphone REGISTER over TLS (baresip's, with a User-Agent and Allow), about 600 bytes.
    static let register = [
        "REGISTER sip:example.com;transport=tls SIP/2.0",
        "Via: SIP/2.0/TLS 192.0.2.10:35161;branch=z9hG4bKaa8332ea7e4356b2;rport",
        "Contact: <sip:alice-0x5586d74020a0@192.0.2.10:35161;transport=tls>;expires=600;+sip.instance=\"<urn:uuid:2b8acd00-0430-25b9-5543-0667182cd11f>\";reg-id=1",
        "Max-Forwards: 70",
        "Route: <sip:192.0.2.1:5061;transport=tls;lr>",
        "To: <sip:alice@example.com>",
        "From: <sip:alice@example.com>;tag=c932b6af12c6a5aa",
        "Call-ID: c7d6fcc281d15b30",
        "CSeq: 40208 REGISTER",
        "User-Agent: baresip v1.0.0 (x86_64/linux)",
        "Supported: gruu, outbound, path",
        "Allow: INVITE,ACK,BYE,CANCEL,OPTIONS,NOTIFY,SUBSCRIBE,INFO,MESSAGE,REFER",
        "Content-Length: 0",
        "", "",
    ].joined(separator: "\r\n")

    static func run() -> [Measurement] {
        let bytes = Array(register.utf8)
        let parser = SIPMessageParser()
        guard case .request(let request) = try? parser.parse(bytes) else { fatalError("benchmark REGISTER does not parse") }
        let date = SIPDate.format(secondsSince1970: 1_700_000_000)
        var results: [Measurement] = []
        results.append(measure("parse REGISTER (\(bytes.count) bytes)") {
            blackHole(try? parser.parse(bytes))
        })
        results.append(measure("parse REGISTER + Via/To/CSeq/Contact access") {
            guard case .request(let r) = try? parser.parse(bytes) else { return }
            blackHole(try? r.headers.topVia)
            blackHole(try? r.headers.to)
            blackHole(try? r.headers.cseq)
            blackHole(try? r.headers.contact)
        })
        results.append(measure("build and serialize its 200 OK") {
            var response = SIPResponse(to: request, statusCode: 200, toTag: "8c1f2e0a", server: nil)
            response.headers.add(.contact, "<sip:alice-0x5586d74020a0@192.0.2.10:35161;transport=tls>;expires=600;+sip.instance=\"<urn:uuid:2b8acd00-0430-25b9-5543-0667182cd11f>\";reg-id=1")
            response.headers.add(.date, date)
            blackHole(response.serialized())
        })
        let response = {
            var r = SIPResponse(to: request, statusCode: 200, toTag: "8c1f2e0a", server: nil)
            r.headers.add(.date, date)
            return r
        }()
        results.append(measure("serialize a built 200 OK") {
            blackHole(response.serialized())
        })
        return results
    }
}
