import Dispatch
public import Logging
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where log lines go: standard error, written by one background queue, never by the
/// thread that logs. An event loop that logs only formats the line and hands it over; a
/// slow sink (a terminal, a full pipe, journald under load) cannot stall SIP answers.
/// At most `capacity` lines wait; beyond that lines are dropped and counted, and the
/// next line written says how many were lost.
public final class LogSink: Sendable {
    /// The process-wide sink for standard error.
    public static let standardError = LogSink(fileDescriptor: 2)

    private let fd: Int32
    private let capacity: Int
    private let queue = DispatchQueue(label: "sip-registrar.log")
    private let state = NIOLockedValueBox(State())

    private struct State {
        var pending = 0
        var dropped = 0
        var droppedTotal = 0
    }

    public init(fileDescriptor: Int32, capacity: Int = 10_000) {
        self.fd = fileDescriptor
        self.capacity = capacity
    }

    /// Lines dropped since start because the sink could not keep up.
    public var droppedLines: Int { state.withLockedValue { $0.droppedTotal } }

    /// Queues one line (without its newline); drops it when `capacity` lines already wait.
    public func write(_ line: String) {
        let accepted = state.withLockedValue { s -> Bool in
            guard s.pending < capacity else {
                s.dropped += 1
                s.droppedTotal += 1
                return false
            }
            s.pending += 1
            return true
        }
        guard accepted else { return }
        queue.async {
            let lost = self.state.withLockedValue { s -> Int in
                s.pending -= 1
                let d = s.dropped
                s.dropped = 0
                return d
            }
            var text = line
            if lost > 0 { text = "(\(lost) log lines dropped: the log sink was too slow)\n" + text }
            text += "\n"
            self.writeAll(text)
        }
    }

    /// Waits until every queued line is written (at shutdown, and in tests).
    public func flush() {
        queue.sync {}
    }

    private func writeAll(_ text: String) {
        var bytes = Array(text.utf8)
        var offset = 0
        bytes.withUnsafeMutableBytes { buf in
            guard let base = buf.baseAddress else { return }
            while offset < buf.count {
                let n = Glibc.write(fd, base + offset, buf.count - offset)
                if n > 0 {
                    offset += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    return  // the sink is gone: nothing sensible is left to do with the line
                }
            }
        }
    }
}

/// A swift-log handler that formats like `StreamLogHandler` (time, level, label, metadata,
/// message) and writes through a ``LogSink`` off the caller's thread.
public struct BackgroundLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let sink: LogSink

    public init(label: String, level: Logger.Level = .info, sink: LogSink = .standardError) {
        self.label = label
        self.logLevel = level
        self.sink = sink
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let extra = event.metadata { all.merge(extra) { _, new in new } }
        var line = Self.timestamp()
        line += " "
        line += event.level.rawValue
        line += " "
        line += label
        line += " :"
        for key in all.keys.sorted() {
            line += " "
            line += key
            line += "="
            line += "\(all[key].map { "\($0)" } ?? "")"
        }
        line += " "
        line += "\(event.message)"
        sink.write(line)
    }

    /// `2026-12-01T21:00:00+0000`, local time, as `StreamLogHandler` writes it.
    static func timestamp() -> String {
        var now = time(nil)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [Int8](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
