import Foundation
@testable import SIPRegistrarServer
import SIPTestSupport
import Testing

/// The default log level logs bindings that come and go, not every refresh.
@Suite(.serialized) struct QuietLogTests {
    @Test func refreshesAreNotLoggedAtInfo() throws {
        let s = try ServerProcess.start(["--log-level", "info"], store: "memory")
        defer { s.stop() }
        let callID = UUID().uuidString
        for cseq in 1...3 {
            let answer = SIPClient.udp(SIPClient.register(user: "quiet", contact: "<sip:quiet@127.0.0.1:5070>", callID: callID,
                                                          cseq: cseq), port: s.udp)
            #expect(answer?.hasPrefix("SIP/2.0 200 OK") == true, "\(answer ?? "no answer")")
        }
        let gone = SIPClient.udp(SIPClient.register(user: "quiet", contact: "<sip:quiet@127.0.0.1:5070>", callID: callID,
                                                    cseq: 4, expires: 0), port: s.udp)
        #expect(gone?.hasPrefix("SIP/2.0 200 OK") == true)
        // Lines are written by a background queue: wait (bounded) for the last one.
        let deadline = Date().addingTimeInterval(5)
        while Date() < deadline, !s.errors.contains("binding removed") { usleep(20_000) }
        let log = s.errors
        #expect(log.components(separatedBy: "binding created").count - 1 == 1, "\(log)")
        #expect(log.contains("binding removed"), "\(log)")
        #expect(!log.contains("binding refreshed"), "\(log)")
    }
}
