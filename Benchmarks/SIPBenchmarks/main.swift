// Micro benchmarks. Run in release mode:
//   swift run -c release SIPBenchmarks [message|registrar|memory|register-count N|dispatcher-server UDP TCP]
// Prints the median time per operation over 21 batches and heap allocations per operation.
//
// The entry point is synchronous (no top-level await): an async main parks the main thread
// and starts worker threads, which valgrind 3.19 cannot run (register-count under callgrind).

import Dispatch
#if canImport(Glibc)
import Glibc
#endif

/// Runs `body` on the global executor and waits for it.
func runBlocking(_ body: @escaping @Sendable () async throws -> Void) {
    let done = DispatchSemaphore(value: 0)
    Task {
        do { try await body() } catch { fatalError("\(error)") }
        done.signal()
    }
    done.wait()
}

let which = CommandLine.arguments.dropFirst().first ?? "all"
if which == "dispatcher-server" {
    // swift run -c release SIPBenchmarks dispatcher-server UDP_PORT TCP_PORT (used by dispatcher-sipp.sh)
    let args = Array(CommandLine.arguments.dropFirst(2))
    runBlocking { try await DispatcherServer.run(udpPort: Int(args.first ?? "") ?? 15070, tcpPort: Int(args.dropFirst().first ?? "") ?? 15070) }
}
if which == "tls-server" {
    // swift run -c release SIPBenchmarks tls-server PORT CERT KEY (used by tls-bench.sh)
    let a = Array(CommandLine.arguments.dropFirst(2))
    guard a.count == 3, let port = Int(a[0]) else { fatalError("usage: tls-server PORT CERT KEY") }
    runBlocking { try await TLSBenchServer.run(port: port, cert: a[1], key: a[2]) }
}
if which == "register-count" {
    // SIPBenchmarks register-count N: exactly N REGISTERs (parse -> registrar -> serialize, a new
    // AOR each), nothing printed; Benchmarks/instructions.sh runs it under callgrind. The task
    // runs to its end on this thread, inside the Task initializer: no worker thread starts.
    let n = Int(CommandLine.arguments.dropFirst(2).first ?? "") ?? 1_000
    let finished = InlineCompletion()
    Task(executorPreference: InlineTaskExecutor()) {
        await RegistrarBenchmarks.registerCount(n)
        finished.set()
    }
    guard finished.isSet else { fatalError("register-count did not finish inline") }
    exit(0)
}
print("sip-registrar micro benchmarks (median of 21 batches)")
if which == "all" || which == "message" {
    for m in MessageBenchmarks.run() { print(m.line) }
}
if which == "all" || which == "registrar" {
    runBlocking { for m in await RegistrarBenchmarks.run() { print(m.line) } }
}
if which == "all" || which == "memory" {
    runBlocking { print(await RegistrarBenchmarks.memory(count: 1_000_000)) }
}
