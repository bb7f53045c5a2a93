import Foundation
@testable import SIPTLS
import SIPTestSupport
import Testing

@Suite struct TLSContextLoadingTests {
    func loadError(_ config: TLSConfiguration) -> String? {
        do {
            _ = try TLSContext(configuration: config)
            return nil
        } catch {
            return error.description
        }
    }

    func tempFile(_ contents: String) -> String {
        let path = NSTemporaryDirectory() + "siptls-\(UUID().uuidString).pem"
        _ = FileManager.default.createFile(atPath: path, contents: Data(contents.utf8))
        return path
    }

    @Test func loadsAndReportsItsCertificate() throws {
        let ctx = try TLSContext(configuration: serverConfig())
        #expect(ctx.certificate?.dnsNames.contains("example.com") == true)
        #expect(ctx.certificate?.fingerprintSHA256.count == 95)
    }

    @Test func missingCertificateFileIsNamed() {
        let e = loadError(.server(certificateChain: .file("/no/such/server.pem"), privateKey: .file(TestCerts.ec.serverKey)))
        #expect(e == "certificate file /no/such/server.pem: No such file or directory")
    }

    @Test func unreadableKeyIsNamed() {
        let bad = tempFile("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
        let e = loadError(.server(certificateChain: .file(TestCerts.ec.serverCert), privateKey: .file(bad)))
        #expect(e?.hasPrefix("private key \(bad): unreadable") == true)
    }

    @Test func keyNotMatchingTheCertificate() {
        let e = loadError(.server(certificateChain: .file(TestCerts.ec.serverCert), privateKey: .file(TestCerts.other.serverKey)))
        #expect(e?.hasPrefix("private key \(TestCerts.other.serverKey) does not match certificate \(TestCerts.ec.serverCert)") == true)
        #expect(e?.contains("key values mismatch") == true)
    }

    @Test func expiredCertificate() throws {
        let expired = try DevelopmentIdentity.generate(names: ["localhost"], days: -1)
        let e = loadError(.server(certificateChain: .bytes(expired.certificatePEM), privateKey: .bytes(expired.privateKeyPEM)))
        #expect(e == "certificate PEM data in memory: expired")
    }

    @Test func emptyOrBogusCAFile() {
        let empty = tempFile("")
        #expect(loadError(serverConfigWithCA(empty)) == "CA file \(empty): empty")
        let bogus = tempFile("hello\n")
        #expect(loadError(serverConfigWithCA(bogus)) == "CA file \(bogus): no PEM certificate found")
    }

    func serverConfigWithCA(_ ca: String) -> TLSConfiguration {
        .server(certificateChain: .file(TestCerts.ec.serverCert), privateKey: .file(TestCerts.ec.serverKey),
                clientCertificates: .required, trustRoots: .file(ca))
    }

    @Test func encryptedKeyNeedsItsPassphrase() throws {
        let encrypted = NSTemporaryDirectory() + "siptls-enc-\(UUID().uuidString).key"
        let p = try run("/usr/bin/openssl", ["pkey", "-in", TestCerts.ec.serverKey, "-aes256", "-passout", "pass:s3cret",
                                             "-out", encrypted])
        #expect(p.status == 0)
        let without = loadError(.server(certificateChain: .file(TestCerts.ec.serverCert), privateKey: .file(encrypted)))
        #expect(without?.contains("the key is encrypted and no passphrase was given") == true)
        let wrong = loadError(.server(certificateChain: .file(TestCerts.ec.serverCert), privateKey: .file(encrypted), passphrase: "nope"))
        #expect(wrong?.hasPrefix("private key \(encrypted): unreadable") == true)
        #expect(loadError(.server(certificateChain: .file(TestCerts.ec.serverCert), privateKey: .file(encrypted), passphrase: "s3cret")) == nil)
    }

    @Test func configurationIsValidated() {
        #expect(loadError(.server(certificateChain: .file(TestCerts.ec.serverCert), privateKey: .file(TestCerts.ec.serverKey),
                                  clientCertificates: .required)) == "client certificates required need a CA file to verify them")
        var c = serverConfig()
        c.cipherList = "NOTACIPHER"
        #expect(loadError(c)?.hasPrefix("TLS 1.2 cipher list 'NOTACIPHER' selects nothing") == true)
        c = serverConfig()
        c.minimumVersion = .tls13
        c.maximumVersion = .tls12
        #expect(loadError(c) == "the maximum TLS version is below the minimum")
    }
}

@Suite struct PeerCertificateTests {
    @Test func extractsNamesAndFingerprint() throws {
        let ctx = try TLSContext(configuration: serverConfig())
        let cert = try #require(ctx.certificate)
        #expect(cert.dnsNames == ["localhost", "example.com"])
        #expect(cert.ipAddresses == ["127.0.0.1", "::1"])
        #expect(cert.uris == ["sip:example.com"])
        #expect(cert.subjectCommonName == "example.com")
        #expect(cert.issuer.contains("CN=sip-registrar development CA"))
        #expect(cert.notAfter > cert.notBefore)
        // Same fingerprint as the openssl CLI reports.
        let out = try run("/usr/bin/openssl", ["x509", "-in", TestCerts.ec.serverCert, "-noout", "-fingerprint", "-sha256"]).out
        #expect(out.contains(cert.fingerprintSHA256))
    }

    /// RFC 5922 7.1: sip: URIs without user first, then DNS names, the CN only without SAN.
    @Test func sipDomainIdentity() throws {
        let cert = try #require(try TLSContext(configuration: serverConfig()).certificate)
        #expect(cert.identifiesSIPDomain("example.com"))
        #expect(cert.identifiesSIPDomain("EXAMPLE.COM"))
        // The certificate has a sip:example.com URI, so DNS names no longer count.
        #expect(!cert.identifiesSIPDomain("localhost"))
        let dev = try DevelopmentIdentity.generate(names: ["registrar.test", "127.0.0.1"])
        let devCert = try #require(try TLSContext(configuration: dev.serverConfiguration()).certificate)
        #expect(devCert.identifiesSIPDomain("registrar.test"))
        #expect(!devCert.identifiesSIPDomain("other.test"))
        #expect(devCert.ipAddresses == ["127.0.0.1"])
    }

    @Test func clientIdentities() throws {
        let alice = try TLSContext(configuration: .client(trustRoots: .file(TestCerts.ec.ca),
                                                          certificateChain: .file(TestCerts.ec.cert("alice")),
                                                          privateKey: .file(TestCerts.ec.key("alice"))))
        #expect(alice.certificate?.sipIdentities == ["sip:alice@example.com"])
    }

    @Test func developmentIdentityHandshakes() throws {
        let dev = try DevelopmentIdentity.generate(names: ["localhost", "127.0.0.1", "::1"])
        let pair = try Pair(server: dev.serverConfiguration(),
                            client: .client(serverHostname: "localhost", trustRoots: .pem(dev.certificatePEM)))
        try pair.connect()
        #expect(pair.clientRecorder.info?.peerCertificate?.verified == true)
    }
}

@Suite struct TLSStateMachineTests {
    typealias M = TLSHandler.StateMachine

    @Test func happyPath() {
        var m = M()
        #expect(m.write() == .buffer)
        #expect(m.channelActive() == .startHandshake)
        #expect(m.channelActive() == .none)
        #expect(m.write() == .buffer)
        #expect(m.handshakeCompleted() == .becomeActive)
        #expect(m.write() == .encrypt)
        #expect(m.closeRequested() == .sendCloseNotify)
        #expect(m.write() == .fail)
        #expect(m.closeRequested() == .alreadyClosing)
        #expect(m.closeNotifyReceived() == .closeTransport)
        #expect(m.channelInactive() == .none)
        #expect(m.closeRequested() == .alreadyClosed)
    }

    @Test func peerClosesFirst() {
        var m = M()
        _ = m.channelActive()
        _ = m.handshakeCompleted()
        #expect(m.closeNotifyReceived() == .replyAndClose)
        #expect(m.state == .closed)
    }

    @Test func transportEnds() {
        var a = M()
        _ = a.channelActive()
        #expect(a.channelInactive() == .failHandshake)
        var b = M()
        _ = b.channelActive()
        _ = b.handshakeCompleted()
        #expect(b.channelInactive() == .uncleanShutdown)
        var c = M()
        _ = c.channelActive()
        _ = c.handshakeCompleted()
        _ = c.closeRequested()
        #expect(c.channelInactive() == .completeClose)
    }

    @Test func timeouts() {
        var m = M()
        #expect(m.handshakeTimedOut() == .none)
        _ = m.channelActive()
        #expect(m.handshakeTimedOut() == .failAndClose)
        #expect(m.handshakeCompleted() == .none)
        var n = M()
        _ = n.channelActive()
        _ = n.handshakeCompleted()
        #expect(n.closeTimedOut() == .none)
        _ = n.closeRequested()
        #expect(n.closeTimedOut() == .failAndClose)
    }

    @Test func closeBeforeTheChannelIsActiveNeedsNoGoodbye() {
        var m = M()
        #expect(m.closeRequested() == .closeTransport)
        #expect(m.write() == .fail)
        #expect(m.channelActive() == .none)
    }

    /// A connection refused by a limit right after it was accepted must close at once,
    /// not wait for a handshake the peer may never start.
    @Test func closeDuringTheHandshakeWithNothingWrittenClosesNow() {
        var m = M()
        _ = m.channelActive()
        #expect(m.closeRequested(pendingWrites: false) == .closeTransport)
        #expect(m.state == .closed)
        #expect(m.write() == .fail)
    }

    @Test func closeDuringTheHandshakeWaitsForItsEnd() {
        var m = M()
        _ = m.channelActive()
        #expect(m.write() == .buffer)
        #expect(m.closeRequested() == .deferUntilHandshakeEnds)
        #expect(m.closeRequested() == .alreadyClosing)
        #expect(m.write() == .fail, "nothing may be written after close()")
        #expect(m.handshakeCompleted() == .closeAfterHandshake)
        #expect(m.state == .closing)
        #expect(m.closeNotifyReceived() == .closeTransport)
        // A handshake that fails or times out meanwhile just closes.
        var t = M()
        _ = t.channelActive()
        _ = t.closeRequested()
        #expect(t.handshakeTimedOut() == .failAndClose)
        var e = M()
        _ = e.channelActive()
        _ = e.closeRequested()
        #expect(e.channelInactive() == .failHandshake)
    }
}
