import Testing
@testable import SIPMessage
import SIPTestSupport

/// Arbitrary bytes and mutated valid messages must never crash or hang the parser,
/// the framing code, or the typed accessors. The iteration count defaults to a
/// quick run; `SIP_FUZZ_ITERATIONS=1000000 swift test --filter SIPFuzzTests` runs longer.
@Suite struct SIPFuzzTests {
    static var iterations: Int {
        if let v = getenvString("SIP_FUZZ_ITERATIONS"), let n = Int(v) { return n }
        return 20_000
    }

    static let seeds: [String] = [Fixtures.rfcRegister, Fixtures.rfcInvite, Fixtures.rfcRegisterOK, Fixtures.baresipTLS,
                                  Fixtures.linphoneSIPS, Fixtures.netSIP]
    static let tokens: [[UInt8]] = ["\r\n", "\r\n\r\n", ":", ";", ",", "<", ">", "\"", "\\", "%", "%zz", "@", "[", "]",
                                    "sip:", "sips:", "*", " ", "\t", "\r\n ", "=", "?", "&", "Content-Length: 99999\r\n",
                                    "l: -1\r\n", "\u{FF}", "\0"].map { Array($0.utf8) }

    static func exercise(_ bytes: [UInt8]) {
        let limits = SIPParserLimits(maxMessageBytes: 65_536, maxHeaderCount: 256, maxLineBytes: 8_192)
        _ = bytes.withUnsafeBytes { SIPFraming.frame($0, limits: limits) }
        guard let message = try? SIPMessageParser(limits: limits).parse(bytes) else { return }
        let h = message.headers
        _ = try? h.via
        _ = try? h.from
        _ = try? h.to
        _ = try? h.cseq
        _ = try? h.contact
        _ = try? h.expires
        _ = try? h.route
        _ = try? h.path
        _ = try? h.authorization
        _ = try? h.warning
        _ = try? h.retryAfter
        // Whatever parsed must serialize and parse again.
        let again = message.serialized()
        #expect((try? SIPMessageParser(limits: limits).parse(again)) != nil || again.count > limits.maxMessageBytes)
        if case .request(let r) = message {
            _ = SIPResponse(to: r, statusCode: 200, toTag: "t").serialized()
        }
    }

    @Test func mutatedMessagesNeverCrash() {
        var rng = SeededRandom(seed: 0x5EED)
        for _ in 0..<Self.iterations {
            var bytes = Array(Self.seeds[Int(rng.next() % UInt64(Self.seeds.count))].utf8)
            let edits = 1 + Int(rng.next() % 8)
            for _ in 0..<edits {
                guard !bytes.isEmpty else { break }
                let at = Int(rng.next() % UInt64(bytes.count))
                switch rng.next() % 5 {
                case 0: bytes[at] = UInt8(truncatingIfNeeded: rng.next())
                case 1: bytes.remove(at: at)
                case 2: bytes.insert(contentsOf: Self.tokens[Int(rng.next() % UInt64(Self.tokens.count))], at: at)
                case 3: bytes.removeSubrange(at..<min(bytes.count, at + Int(rng.next() % 40)))
                default:
                    let from = Int(rng.next() % UInt64(bytes.count))
                    let len = min(bytes.count - from, Int(rng.next() % 60))
                    bytes.insert(contentsOf: bytes[from..<(from + len)], at: at)
                }
            }
            Self.exercise(bytes)
        }
    }

    @Test func arbitraryBytesNeverCrash() {
        var rng = SeededRandom(seed: 42)
        for _ in 0..<(Self.iterations / 4) {
            let count = Int(rng.next() % 512)
            var bytes = [UInt8](repeating: 0, count: count)
            for i in 0..<count { bytes[i] = UInt8(truncatingIfNeeded: rng.next()) }
            // Make some of them start like SIP so that the deeper paths are reached.
            if rng.next() % 2 == 0 { bytes = Array("REGISTER sip:x SIP/2.0\r\n".utf8) + bytes }
            Self.exercise(bytes)
        }
    }

    @Test func hugeInputsAreBounded() {
        let many = "REGISTER sip:a SIP/2.0\r\n" + String(repeating: "X: y\r\n", count: 10_000) + "\r\n"
        #expect(parseFault(many) == .tooManyHeaders(limit: 256))
        let huge = "REGISTER sip:a SIP/2.0\r\n" + String(repeating: "X: y\r\n", count: 12_000) + "\r\n"
        #expect(parseFault(huge) == .messageTooLarge(limit: 65_536))
        let longLine = "REGISTER sip:a SIP/2.0\r\nX: " + String(repeating: "a", count: 60_000) + "\r\n\r\n"
        #expect(parseFault(longLine) == .lineTooLong(limit: 8_192))
        let deepQuotes = "REGISTER sip:a SIP/2.0\r\nContact: " + String(repeating: "\"<", count: 3000) + "\r\n\r\n"
        _ = try? SIPMessageParser().parse(deepQuotes)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

func getenvString(_ name: String) -> String? {
    guard let p = getenv(name) else { return nil }
    return String(cString: p)
}
