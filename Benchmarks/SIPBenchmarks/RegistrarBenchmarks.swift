import SIPMessage
import SIPRegistrar
import CAllocCounter
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

enum RegistrarBenchmarks {
    /// A REGISTER whose user name is rewritten in place so that each operation registers a new AOR.
    struct Template {
        var bytes: [UInt8]
        var slots: [Int]  // offsets of the 8-digit user number

        init() {
            let text = MessageBenchmarks.register
                .replacingAll("sip:alice@example.com", with: "sip:u00000000@example.com")
            bytes = Array(text.utf8)
            slots = []
            let needle = Array("u00000000".utf8)
            var i = 0
            while i + needle.count <= bytes.count {
                if Array(bytes[i..<(i + needle.count)]) == needle { slots.append(i + 1) }
                i += 1
            }
        }

        mutating func setUser(_ n: Int) {
            var v = n
            var digits = [UInt8](repeating: 48, count: 8)
            for k in stride(from: 7, through: 0, by: -1) {
                digits[k] = UInt8(48 + v % 10)
                v /= 10
            }
            for s in slots {
                for k in 0..<8 { bytes[s + k] = digits[k] }
            }
        }
    }

    static let source = SIPSource(transport: .tls, remoteHost: "192.0.2.10", remotePort: 35161, flowID: 1)

    static func run() async -> [Measurement] {
        var results: [Measurement] = []
        let parser = SIPMessageParser()
        guard let registrar = try? Registrar(configuration: RegistrarConfiguration(minExpires: 60, maxExpires: 3600)) else {
            fatalError("configuration")
        }
        var template = Template()
        var user = 0
        results.append(await measureAsync("REGISTER parse -> registrar -> serialize (new AOR)") {
            user += 1
            template.setUser(user)
            guard case .request(let r) = try? parser.parse(template.bytes) else { fatalError("parse") }
            guard case .respond(let response) = await registrar.receive(r, from: source) else { fatalError("not answered") }
            blackHole(response.serialized())
        })
        let registered = user
        var q = 0
        var addresses: [String] = []
        for i in 0..<10_000 {
            let n: Int = 100_000_000 + 1 + (i * 37) % registered
            let digits = String(String(n).dropFirst())
            addresses.append("sip:u" + digits + "@example.com")
        }
        results.append(measure("query(\"sip:uNNNNNNNN@example.com\")") {
            q += 1
            if q == addresses.count { q = 0 }
            blackHole(registrar.query(addresses[q]))
        })
        return results
    }

    /// Exactly `count` REGISTERs through the same path as the timed benchmark, for an
    /// instruction count that does not depend on the machine's noise.
    static func registerCount(_ count: Int) async {
        guard let registrar = try? Registrar(configuration: RegistrarConfiguration(minExpires: 60, maxExpires: 3600)) else {
            fatalError("configuration")
        }
        let parser = SIPMessageParser()
        var template = Template()
        for n in 0..<count {
            template.setUser(n + 1)
            guard case .request(let r) = try? parser.parse(template.bytes) else { fatalError("parse") }
            guard case .respond(let response) = await registrar.receive(r, from: source) else { fatalError("not answered") }
            blackHole(response.serialized())
        }
    }

    /// Memory per binding: registers `count` AORs with one binding each and reports
    /// the growth of the C heap (mallinfo2 uordblks) divided by `count`.
    static func memory(count: Int) async -> String {
        guard let registrar = try? Registrar(configuration: RegistrarConfiguration(minExpires: 60, maxExpires: 3600)) else {
            fatalError("configuration")
        }
        let parser = SIPMessageParser()
        var template = Template()
        let before = c_alloc_counter_heap_bytes()
        let t0 = now()
        for n in 1...count {
            template.setUser(n)
            guard case .request(let r) = try? parser.parse(template.bytes) else { fatalError("parse") }
            _ = await registrar.receive(r, from: source)
        }
        let t1 = now()
        let after = c_alloc_counter_heap_bytes()
        let grown: Double = Double(after) - Double(before)
        let perBinding = grown / Double(count)
        return "memory: \(count) bindings (one per AOR, baresip-like contact with instance and User-Agent): "
            + "\(Int(perBinding)) bytes of heap per binding; registered in \(Double(t1 - t0) / 1e9) s"
            + " (" + String(registrar.bindingCount) + " held; the record is "
            + String(MemoryLayout<Binding>.stride) + " bytes inline)"
    }
}

func measureAsync(_ name: String, batches: Int = 21, iterations: Int = 20_000, _ body: () async -> Void) async -> Measurement {
    for _ in 0..<(iterations / 10) { await body() }
    var samples: [Double] = []
    let allocsBefore = c_alloc_counter_allocations_checked()
    for _ in 0..<batches {
        let t0 = now()
        for _ in 0..<iterations { await body() }
        let t1 = now()
        samples.append(Double(t1 - t0) / Double(iterations))
    }
    let allocated: UInt64 = c_alloc_counter_allocations_checked() - allocsBefore
    let ops: Int = batches * iterations
    samples.sort()
    return Measurement(name: name, medianNanoseconds: samples[samples.count / 2],
                       allocationsPerOp: Double(allocated) / Double(ops), iterations: ops)
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        var out = ""
        var rest = Substring(self)
        while let r = rest.firstRange(of: target) {
            out += rest[rest.startIndex..<r.lowerBound]
            out += replacement
            rest = rest[r.upperBound...]
        }
        out += rest
        return out
    }
}

/// Runs each job at once on the thread that enqueues it, so that no worker thread starts.
/// Sendable: it has no state.
final class InlineTaskExecutor: TaskExecutor {
    func enqueue(_ job: consuming ExecutorJob) {
        job.runSynchronously(on: asUnownedTaskExecutor())
    }
}

/// Set once from the task, read after it: both on the same thread (the task ran inline).
final class InlineCompletion: Sendable {
    private let value = Mutex(false)
    func set() { value.withLock { $0 = true } }
    var isSet: Bool { value.withLock { $0 } }
}
