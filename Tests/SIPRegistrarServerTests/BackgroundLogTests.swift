import Foundation
import Logging
import NIOConcurrencyHelpers
@testable import SIPRegistrarServer
import SIPTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Log lines are written off the logging thread, and a sink that cannot keep up loses
/// lines (counted) instead of blocking the logger.
@Suite struct BackgroundLogTests {
    func pipe() -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        _ = Glibc.pipe(&fds)
        return (fds[0], fds[1])
    }

    func readAll(_ fd: Int32) -> String {
        var out: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { break }
            out += buffer[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    @Test func linesAreFormattedAndWritten() {
        let (r, w) = pipe()
        let sink = LogSink(fileDescriptor: w)
        var logger = Logger(label: "test") { BackgroundLogHandler(label: $0, level: .info, sink: sink) }
        logger[metadataKey: "a"] = "1"
        logger.info("hello", metadata: ["b": "2"])
        logger.debug("not shown")
        sink.flush()
        close(w)
        let text = readAll(r)
        close(r)
        #expect(text.hasSuffix(" info test : a=1 b=2 hello\n"), "\(text)")
        #expect(!text.contains("not shown"))
    }

    @Test func aSinkThatDoesNotReadNeverBlocksTheLogger() {
        // A pipe nobody reads: it fills (64 KiB), the writer blocks, the queue fills, lines are dropped.
        let (r, w) = pipe()
        let sink = LogSink(fileDescriptor: w, capacity: 100)
        let logger = Logger(label: "test") { BackgroundLogHandler(label: $0, level: .info, sink: sink) }
        let line = String(repeating: "x", count: 1_000)
        for _ in 0..<2_000 { logger.info("\(line)") }
        // The logging thread got here: nothing blocked it. Of 2,000 lines of 1 KB, at most the
        // pipe's 64 KiB, one batch being written (up to 100 lines) and the 100 waiting can have
        // been taken.
        #expect(sink.droppedLines >= 2_000 - 100 - 100 - 70, "\(sink.droppedLines)")
        // Unblock the writer so the queue drains, then the next line reports the loss.
        let reader = Thread { _ = self.readAll(r) }
        reader.start()
        logger.info("after")
        sink.flush()
        close(w)
        Thread.sleep(forTimeInterval: 0.1)
        close(r)
    }
    /// A line whose fields are built on the sink's queue reads exactly like one logged with
    /// metadata; it falls back to metadata when the handler has metadata of its own, or for
    /// any other handler, and a disabled level builds nothing.
    @Test func deferredLinesReadLikeLinesWithMetadata() {
        let (r, w) = pipe()
        let sink = LogSink(fileDescriptor: w)
        var logger = Logger(label: "test") { BackgroundLogHandler(label: $0, level: .info, sink: sink) }
        logger.info("binding created", metadata: ["a.peer": "1.2.3.4:5", "b.aor": "x\\ny", "c.expires": "60"])
        logger.log(level: .info) { f in
            f.add("a.peer", "1.2.3.4:5")
            f.add("b.aor", escaping: "x\ny")
            f.add("c.expires", 60)
            return "binding created"
        }
        let built = NIOLockedValueBox(false)
        logger.log(level: .debug) { _ in
            built.withLockedValue { $0 = true }
            return "not shown"
        }
        logger[metadataKey: "node"] = "n1"
        logger.log(level: .warning) { f in
            f.add("z.last", "2")
            return "merged"
        }
        sink.flush()
        close(w)
        let lines = readAll(r).split(separator: "\n").map { $0.drop { $0 != " " } }
        close(r)
        #expect(lines.count == 3, "\(lines)")
        #expect(lines.first == " info test : a.peer=1.2.3.4:5 b.aor=x\\ny c.expires=60 binding created", "\(lines)")
        #expect(lines.count > 1 && lines[0] == lines[1], "\(lines)")
        #expect(lines.last == " warning test : node=n1 z.last=2 merged", "\(lines)")
        #expect(!built.withLockedValue { $0 })
    }

    @Test func deferredLinesGoToAnyOtherHandlerAsMetadata() {
        let seen = NIOLockedValueBox<[String]>([])
        let logger = Logger(label: "test") { _ in RecordingHandler(seen: seen) }
        logger.log(level: .info) { f in
            f.add("b", escaping: "tab\there")
            f.add("n", 7)
            return "hello"
        }
        #expect(seen.withLockedValue { $0 } == ["hello b=tab\\there n=7"])
    }
}

/// Records each line as `message key=value ...`, keys sorted.
private struct RecordingHandler: LogHandler {
    let seen: NIOLockedValueBox<[String]>
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }
    func log(event: LogEvent) {
        let fields = (event.metadata ?? [:]).sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        seen.withLockedValue { $0.append("\(event.message)\(fields)") }
    }
}
