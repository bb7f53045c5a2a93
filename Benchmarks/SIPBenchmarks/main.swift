// Micro benchmarks. Run in release mode:
//   swift run -c release SIPBenchmarks [message|registrar|memory]
// Prints the median time per operation over 21 batches and heap allocations per operation.

let which = CommandLine.arguments.dropFirst().first ?? "all"
print("sip-registrar micro benchmarks (median of 21 batches)")
if which == "all" || which == "message" {
    for m in MessageBenchmarks.run() { print(m.line) }
}
if which == "all" || which == "registrar" {
    for m in await RegistrarBenchmarks.run() { print(m.line) }
}
if which == "all" || which == "memory" {
    print(await RegistrarBenchmarks.memory(count: 1_000_000))
}
