import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A long-running child process (a server under test, a softphone, an OpenSSL peer) whose
/// standard output and error are collected while it runs.
public final class ChildProcess: @unchecked Sendable {
    // Safety: every stored property is a constant set in init; the collected texts are
    // `LockedText`s, and after `run()` the process is only asked for its state, signalled
    // and waited for, which Foundation's `Process` allows from any thread.

    /// The process itself.
    public let process = Process()
    /// Its standard input when it was opened (`stdin: true`).
    public let input: Pipe?
    private let stdoutText = LockedText()
    private let stderrText: LockedText

    /// Starts `exe` with `args`.
    /// - Parameters:
    ///   - env: added to our environment.
    ///   - cwd: its working folder (nil: ours).
    ///   - stdin: open a pipe to its standard input (else /dev/null).
    ///   - mergingErrors: standard error goes into ``output`` too; else into ``errors``.
    public init(_ exe: String, _ args: [String], env: [String: String] = [:], cwd: String? = nil, stdin: Bool = false,
                mergingErrors: Bool = true) throws {
        process.executableURL = URL(fileURLWithPath: exe)
        process.arguments = args
        process.environment = environment(adding: env)
        if let cwd { process.currentDirectoryURL = URL(fileURLWithPath: cwd) }
        let out = Pipe()
        let err = mergingErrors ? out : Pipe()
        stderrText = mergingErrors ? stdoutText : LockedText()
        process.standardOutput = out
        process.standardError = err
        input = stdin ? Pipe() : nil
        process.standardInput = input ?? FileHandle.nullDevice
        collect(out, into: stdoutText)
        if !mergingErrors { collect(err, into: stderrText) }
        try process.run()
    }

    /// Standard output so far (with standard error when merged).
    public var output: String { stdoutText.value }
    /// Standard error so far (the same as ``output`` when merged).
    public var errors: String { stderrText.value }
    /// Whether it still runs.
    public var isRunning: Bool { process.isRunning }

    /// Writes `line` and a newline to its standard input (when open and it still runs).
    public func write(_ line: String) {
        guard let input, process.isRunning else { return }
        try? input.fileHandleForWriting.write(contentsOf: Data((line + "\n").utf8))
    }

    /// Sends it `sig`.
    public func signal(_ sig: Int32) { kill(process.processIdentifier, sig) }

    /// Waits for its exit (SIGKILL after `timeout`); its exit status.
    @discardableResult
    public func wait(timeout: TimeInterval = 15) -> Int32 {
        finish(process, timeout: timeout)
        return process.terminationStatus
    }

    /// Waits up to `grace` seconds for an exit on its own, then SIGTERM, then SIGKILL. Ask it
    /// to quit first: a child started from a test thread inherits that thread's signal mask
    /// (libdispatch workers block nearly everything), so SIGTERM stays pending.
    public func stop(grace: TimeInterval = 0, term: TimeInterval = 1) {
        _ = eventually(timeout: grace) { !process.isRunning }
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
        _ = eventually(timeout: term) { !process.isRunning }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
        try? input?.fileHandleForWriting.close()
    }
}
