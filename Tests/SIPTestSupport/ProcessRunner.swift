import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// The test process's environment with `extra` on top.
func environment(adding extra: [String: String]) -> [String: String] {
    var environment = ProcessInfo.processInfo.environment
    for (k, v) in extra { environment[k] = v }
    return environment
}

/// Collects what `pipe` delivers into `text` while the child runs (a full pipe would block it).
func collect(_ pipe: Pipe, into text: LockedText) {
    pipe.fileHandleForReading.readabilityHandler = { h in text.append(String(decoding: h.availableData, as: UTF8.self)) }
}

/// Waits until `p` exits, or `stop` says so, or `timeout` passes; then SIGKILLs it if it still runs, and reaps it.
func finish(_ p: Process, timeout: TimeInterval, stop: () -> Bool = { false }) {
    let deadline = Date().addingTimeInterval(timeout)
    while p.isRunning, Date() < deadline, !stop() { usleep(20_000) }
    if p.isRunning { kill(p.processIdentifier, SIGKILL) }
    p.waitUntilExit()
}

/// Runs a command to completion (SIGKILLed after `timeout`), reading its output while it runs.
/// - Parameters:
///   - input: written to its standard input, which is then closed (nil: closed at once).
///   - cwd: its working folder (nil: ours).
///   - env: added to our environment.
///   - mergingErrors: standard error goes into `out` with standard output, in the order written; `err` stays empty.
/// - Returns: the exit status, standard output and standard error.
public func run(_ exe: String, _ args: [String], input: String? = nil, timeout: TimeInterval = 20, cwd: String? = nil,
                env: [String: String] = [:], mergingErrors: Bool = false) throws -> (status: Int32, out: String, err: String) {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    if let cwd { p.currentDirectoryURL = URL(fileURLWithPath: cwd) }
    p.environment = environment(adding: env)
    let out = Pipe(), inp = Pipe()
    let err = mergingErrors ? out : Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = inp
    let outText = LockedText(), errText = LockedText()
    collect(out, into: outText)
    if !mergingErrors { collect(err, into: errText) }
    try p.run()
    if let input { inp.fileHandleForWriting.write(Data(input.utf8)) }
    try? inp.fileHandleForWriting.close()
    finish(p, timeout: timeout)
    for (pipe, text) in mergingErrors ? [(out, outText)] : [(out, outText), (err, errText)] {
        pipe.fileHandleForReading.readabilityHandler = nil
        text.append(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }
    return (p.terminationStatus, outText.value, errText.value)
}

/// ``run(_:_:input:timeout:cwd:env:mergingErrors:)`` with standard error merged into standard
/// output and `input` always written: the exit status and everything the command printed.
public func runCombined(_ exe: String, _ args: [String], input: String = "", timeout: TimeInterval = 30) throws
    -> (status: Int32, output: String) {
    let r = try run(exe, args, input: input, timeout: timeout, mergingErrors: true)
    return (r.status, r.out)
}

/// Runs a command with `input` on its standard input (kept open) until its output (standard
/// output and error together) satisfies `done`, it exits, or `timeout` passes; then kills it.
/// - Returns: the output so far.
public func runUntil(_ exe: String, _ args: [String], input: String, timeout: TimeInterval = 10,
                     done: (String) -> Bool) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    let inPipe = Pipe(), outPipe = Pipe()
    p.standardInput = inPipe
    p.standardOutput = outPipe
    p.standardError = outPipe
    let output = LockedText()
    collect(outPipe, into: output)
    try p.run()
    inPipe.fileHandleForWriting.write(Data(input.utf8))
    finish(p, timeout: timeout) { done(output.value) }
    outPipe.fileHandleForReading.readabilityHandler = nil
    try? inPipe.fileHandleForWriting.close()
    return output.value
}

/// ``runUntil(_:_:input:timeout:done:)`` until `needle` shows up in the output.
public func runUntil(_ exe: String, _ args: [String], input: String, needle: String, timeout: TimeInterval = 10) throws -> String {
    try runUntil(exe, args, input: input, timeout: timeout) { $0.contains(needle) }
}
