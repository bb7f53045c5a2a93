import COpenSSL
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOTLS
@testable import SIPTLS
import SIPTestSupport
import Testing

/// Verification, client certificates, resumption and reloads: the in-memory handshake tests that concern certificates.
extension TLSHandlerInMemoryTests {
    @Test func hostnameMismatchFailsTheHandshake() throws {
        let pair = try Pair(server: serverConfig(), client: clientConfig(hostname: "wrong.example.net"))
        try pair.connect()
        guard case .handshakeFailed(_, let verify)? = pair.clientRecorder.tlsErrors.first else {
            Issue.record("expected a handshake failure, got \(pair.clientRecorder.errors)")
            return
        }
        #expect(verify?.contains("hostname mismatch") == true)
        #expect(!pair.client.isActive)
    }

    @Test func untrustedServerFailsTheHandshake() throws {
        let pair = try Pair(server: serverConfig(TestCerts.other), client: clientConfig())
        try pair.connect()
        guard case .handshakeFailed(_, let verify)? = pair.clientRecorder.tlsErrors.first else {
            Issue.record("expected a handshake failure")
            return
        }
        #expect(verify != nil)
    }

    @Test func clientCertificateNotRequested() throws {
        let pair = try Pair(server: serverConfig(clientCerts: .none), client: clientConfig(user: "alice"))
        try pair.connect()
        #expect(pair.serverRecorder.handshakes == 1)
        #expect(pair.serverRecorder.info?.peerCertificate == nil)
    }

    @Test func clientCertificateOptional() throws {
        let without = try Pair(server: serverConfig(clientCerts: .optional), client: clientConfig())
        try without.connect()
        #expect(without.serverRecorder.handshakes == 1 && without.serverRecorder.info?.peerCertificate == nil)

        let with = try Pair(server: serverConfig(clientCerts: .optional), client: clientConfig(user: "alice"))
        try with.connect()
        let cert = try #require(with.serverRecorder.info?.peerCertificate)
        #expect(cert.verified && cert.sipIdentities == ["sip:alice@example.com"])
        #expect(cert.subjectCommonName == "alice")
    }

    @Test func clientCertificateRequiredTLS13LateRejection() throws {
        let pair = try Pair(server: serverConfig(clientCerts: .required), client: clientConfig())
        try pair.connect()
        // TLS 1.3: the client's handshake completes before the server has judged it...
        #expect(pair.clientRecorder.handshakes == 1)
        #expect(pair.serverRecorder.handshakes == 0)
        guard case .handshakeFailed? = pair.serverRecorder.tlsErrors.first else {
            Issue.record("the server must refuse: \(pair.serverRecorder.errors)")
            return
        }
        // ...and learns from the alert that follows.
        #expect(!pair.client.isActive)
        guard case .protocolError(let stack)? = pair.clientRecorder.tlsErrors.first else {
            Issue.record("the client must see the alert: \(pair.clientRecorder.errors)")
            return
        }
        #expect(stack.contains { $0.reason.contains("certificate required") })
    }

    @Test func clientCertificateRequiredTLS12() throws {
        var client = clientConfig()
        client.maximumVersion = .tls12
        let pair = try Pair(server: serverConfig(clientCerts: .required), client: client)
        try pair.connect()
        #expect(pair.clientRecorder.handshakes == 0 && pair.serverRecorder.handshakes == 0)
        let ok = try Pair(server: serverConfig(clientCerts: .required), client: clientConfig(user: "alice"))
        try ok.connect()
        #expect(ok.serverRecorder.info?.peerCertificate?.verified == true)
    }

    @Test func sessionResumption() throws {
        let server = try TLSContext(configuration: serverConfig(clientCerts: .optional))
        let client = try TLSContext(configuration: clientConfig(user: "alice"))
        let first = try Pair(server: server, client: client)
        try first.connect()
        first.send(fromServer: "ticket please")  // TLS 1.3 tickets arrive after the handshake
        let session = try #require(first.clientHandler.session)
        let second = try Pair(server: server, client: client, resuming: session)
        try second.connect()
        #expect(second.clientRecorder.info?.sessionReused == true)
        #expect(second.serverRecorder.info?.sessionReused == true)
    }

    @Test func reloadIsVisibleToTheNextConnectionOnly() throws {
        let store = try TLSContextStore(configuration: serverConfig(TestCerts.ec))
        let trustBoth = TLSConfiguration.client(serverHostname: "localhost", trustRoots: .pem(
            Array(try String(contentsOfFile: TestCerts.ec.ca, encoding: .utf8).utf8)
                + Array(try String(contentsOfFile: TestCerts.rsa.ca, encoding: .utf8).utf8)))
        let clientContext = try TLSContext(configuration: trustBoth)
        let first = try Pair(server: store.context, client: clientContext)
        try first.connect()
        let before = try #require(first.clientRecorder.info?.peerCertificate?.fingerprintSHA256)

        guard case .success = store.reload(configuration: serverConfig(TestCerts.rsa)) else {
            Issue.record("reload failed")
            return
        }
        let current = store.context
        let second = try Pair(server: current, client: clientContext)
        try second.connect()
        let after = try #require(second.clientRecorder.info?.peerCertificate?.fingerprintSHA256)
        #expect(before != after)
        // The old connection lives on.
        first.send(fromClient: "old flow")
        #expect(first.serverRecorder.text == "old flow")

        // A failed reload keeps the current context and says why.
        guard case .failure(let error) = store.reload(configuration: .server(certificateChain: .file("/nonexistent.pem"),
                                                                             privateKey: .file("/nonexistent.key"))) else {
            Issue.record("reload must fail")
            return
        }
        #expect(error.description.contains("/nonexistent.pem"))
        #expect(store.context === current)
    }
}
