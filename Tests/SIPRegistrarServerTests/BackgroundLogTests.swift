import Foundation
import Logging
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
}
