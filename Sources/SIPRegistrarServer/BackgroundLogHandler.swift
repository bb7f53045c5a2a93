import Dispatch
import Logging
import NIOConcurrencyHelpers

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Where log lines go: standard error, written by one background queue, never by the
/// thread that logs. A thread that logs only captures the event (level, message,
/// metadata, time) and hands it over; formatting and writing happen on the queue, in
/// batches (lines are gathered for 20 ms, then written with one `write`), so a slow sink
/// (a terminal, a full pipe, journald under load) cannot stall SIP answers and a busy
/// one costs little.
/// At most `capacity` lines wait; beyond that lines are dropped and counted, and the
/// next batch written says how many were lost.
package final class LogSink: Sendable {
    /// The process-wide sink for standard error.
    package static let standardError = LogSink(fileDescriptor: 2)

    /// One line to write: text already formatted, a log event formatted on the queue, or a
    /// line whose fields and message are produced on the queue (``Logger/log(level:fields:)``).
    enum Entry: Sendable {
        case text(String)
        case event(label: String, level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata, time: Int)
        case deferred(label: String, level: Logger.Level, time: Int, fields: @Sendable (inout LogFields) -> Logger.Message)
    }

    private let fd: Int32
    private let capacity: Int
    private let queue = DispatchQueue(label: "sip-registrar.log")
    private let state = NIOLockedValueBox(State())
    /// The formatted time of the last second seen; touched only on `queue`.
    private let clock = NIOLockedValueBox<(second: Int, text: String)>((-1, ""))

    private struct State {
        var pending: [Entry] = []
        var draining = false
        var dropped = 0
        var droppedTotal = 0
    }

    package init(fileDescriptor: Int32, capacity: Int = 10_000) {
        self.fd = fileDescriptor
        self.capacity = capacity
    }

    /// Lines dropped since start because the sink could not keep up.
    package var droppedLines: Int { state.withLockedValue { $0.droppedTotal } }

    /// Queues one line (without its newline); drops it when `capacity` lines already wait.
    package func write(_ line: String) { enqueue(.text(line)) }

    func enqueue(_ entry: Entry) {
        let startDrain = state.withLockedValue { s -> Bool in
            guard s.pending.count < capacity else {
                s.dropped += 1
                s.droppedTotal += 1
                return false
            }
            s.pending.append(entry)
            if s.draining { return false }
            s.draining = true
            return true
        }
        // The first line of a batch starts a short wait: the lines logged meanwhile join it, so
        // a busy server wakes the queue and writes a few dozen times a second, not once per line.
        if startDrain { queue.asyncAfter(deadline: .now() + .milliseconds(20)) { self.drain() } }
    }

    /// Writes batches until nothing waits.
    private func drain() {
        while true {
            let (batch, lost) = state.withLockedValue { s -> ([Entry], Int) in
                let b = s.pending
                s.pending = []
                if b.isEmpty { s.draining = false }
                let d = s.dropped
                s.dropped = 0
                return (b, d)
            }
            if batch.isEmpty && lost == 0 { return }
            var text = ""
            text.reserveCapacity(batch.count * 200)
            if lost > 0 { text += "(\(lost) log lines dropped: the log sink was too slow)\n" }
            for e in batch {
                switch e {
                case .text(let line):
                    text += line
                case .event(let label, let level, let message, let metadata, let time):
                    format(label: label, level: level, message: message, metadata: metadata, time: time, into: &text)
                case .deferred(let label, let level, let time, let fields):
                    prefix(label: label, level: level, time: time, into: &text)
                    // The fields are appended straight to the batch's text: no metadata
                    // dictionary, no sort, no copy (the swaps move the storage in and out).
                    var f = LogFields(direct: true)
                    swap(&f.text, &text)
                    let message = fields(&f)
                    swap(&f.text, &text)
                    text += " "
                    text += message.description
                }
                text += "\n"
            }
            writeAll(text)
            if batch.isEmpty { return }
        }
    }

    /// `TIME LEVEL LABEL : key=value ... MESSAGE`, keys sorted, as `StreamLogHandler` writes it.
    private func format(label: String, level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata,
                        time: Int, into text: inout String) {
        prefix(label: label, level: level, time: time, into: &text)
        for key in metadata.keys.sorted() {
            text += " "
            text += key
            text += "="
            if let value = metadata[key] { text += value.description }
        }
        text += " "
        text += message.description
    }

    /// `TIME LEVEL LABEL :`
    private func prefix(label: String, level: Logger.Level, time: Int, into text: inout String) {
        text += timestamp(time)
        text += " "
        text += level.rawValue
        text += " "
        text += label
        text += " :"
    }

    /// `2026-12-01T21:00:00+0000`, local time, formatted once per second.
    private func timestamp(_ second: Int) -> String {
        clock.withLockedValue { c in
            if c.second == second { return c.text }
            c = (second, Self.format(second))
            return c.text
        }
    }

    static func format(_ second: Int) -> String {
        var now = time_t(second)
        var parts = tm()
        localtime_r(&now, &parts)
        var buffer = [Int8](repeating: 0, count: 32)
        let n = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &parts)
        return String(decoding: buffer.prefix(n).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Writes every queued line now and waits until it is written (at shutdown, and in tests).
    package func flush() {
        queue.sync { drain() }
    }

    private func writeAll(_ text: String) {
        var text = text
        text.withUTF8 { buf in
            guard let base = buf.baseAddress else { return }
            var offset = 0
            while offset < buf.count {
                let n = Glibc.write(fd, base + offset, buf.count - offset)
                if n > 0 {
                    offset += n
                } else if n < 0 && errno == EINTR {
                    continue
                } else {
                    return  // the sink is gone: nothing sensible is left to do with the lines
                }
            }
        }
    }
}

/// A swift-log handler that hands each event to a ``LogSink``, which formats it like
/// `StreamLogHandler` (time, level, label, metadata, message) off the caller's thread.
package struct BackgroundLogHandler: LogHandler {
    package var logLevel: Logger.Level
    package var metadata: Logger.Metadata = [:]
    package var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let sink: LogSink

    package init(label: String, level: Logger.Level = .info, sink: LogSink = .standardError) {
        self.label = label
        self.logLevel = level
        self.sink = sink
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    package func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() { all.merge(provided) { _, new in new } }
        if let extra = event.metadata {
            if all.isEmpty { all = extra } else { all.merge(extra) { _, new in new } }
        }
        sink.enqueue(.event(label: label, level: event.level, message: event.message, metadata: all, time: time(nil)))
    }

    /// Queues a line whose fields and message `fields` writes on the sink's queue; `false`
    /// (nothing queued) when the handler has metadata of its own, which must be merged and
    /// sorted with the line's keys the usual way.
    func logDeferred(level: Logger.Level, _ fields: @escaping @Sendable (inout LogFields) -> Logger.Message) -> Bool {
        guard metadata.isEmpty, metadataProvider == nil else { return false }
        sink.enqueue(.deferred(label: label, level: level, time: time(nil), fields: fields))
        return true
    }
}

/// The `key=value` fields of one log line, for ``Logger/log(level:fields:)``: appended to
/// the line's text as they come when a ``BackgroundLogHandler`` writes the line, gathered
/// into metadata for any other handler.
package struct LogFields {
    private let direct: Bool
    fileprivate var text = ""
    fileprivate(set) var metadata: Logger.Metadata = [:]

    fileprivate init(direct: Bool) { self.direct = direct }

    /// Adds `key=value`. Keys are given in sorted order, as ``LogSink`` writes every other line.
    package mutating func add(_ key: String, _ value: String) {
        guard direct else {
            metadata[key] = .string(value)
            return
        }
        text += " "
        text += key
        text += "="
        text += value
    }

    /// Adds `key=value` with the value escaped (``Swift/String/logSafe``): for values taken
    /// from a request.
    package mutating func add(_ key: String, escaping value: String) { add(key, value.logSafe) }

    /// Adds `key=value` for a number.
    package mutating func add(_ key: String, _ value: Int) { add(key, String(value)) }
}

extension Logger {
    /// Logs a line whose fields and message are built only when it is written: on the log
    /// sink's queue when the handler is a ``BackgroundLogHandler`` (the caller pays one
    /// closure and a queued entry, not a metadata dictionary, escaping and formatting), at
    /// once for any other handler. For lines on the hot path (one per REGISTER that
    /// creates a binding); `fields` must be cheap to capture and must not touch state that
    /// changes later.
    package func log(level: Logger.Level, fields: @escaping @Sendable (inout LogFields) -> Logger.Message) {
        guard logLevel <= level else { return }
        if let h = handler as? BackgroundLogHandler, h.logDeferred(level: level, fields) { return }
        var f = LogFields(direct: false)
        let message = fields(&f)
        log(level: level, message, metadata: f.metadata)
    }
}
