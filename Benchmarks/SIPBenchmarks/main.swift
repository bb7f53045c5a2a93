// Micro benchmarks. Run in release mode:
//   swift run -c release SIPBenchmarks [message|registrar|memory|dispatcher-server UDP TCP]
// Prints the median time per operation over 21 batches and heap allocations per operation.

let which = CommandLine.arguments.dropFirst().first ?? "all"
if which == "dispatcher-server" {
    // swift run -c release SIPBenchmarks dispatcher-server UDP_PORT TCP_PORT (used by dispatcher-sipp.sh)
    let args = Array(CommandLine.arguments.dropFirst(2))
    try await DispatcherServer.run(udpPort: Int(args.first ?? "") ?? 15070, tcpPort: Int(args.dropFirst().first ?? "") ?? 15070)
}
if which == "tls-server" {
    // swift run -c release SIPBenchmarks tls-server PORT CERT KEY (used by tls-bench.sh)
    let a = Array(CommandLine.arguments.dropFirst(2))
    guard a.count == 3, let port = Int(a[0]) else { fatalError("usage: tls-server PORT CERT KEY") }
    try await TLSBenchServer.run(port: port, cert: a[1], key: a[2])
}
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
