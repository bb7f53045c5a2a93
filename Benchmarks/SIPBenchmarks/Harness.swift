import CAllocCounter

#if canImport(Glibc)
import Glibc
#endif

/// A tiny benchmark harness: runs `body` in batches, reports the median time per
/// operation over the batches and the heap allocations per operation.
struct Measurement {
    var name: String
    var medianNanoseconds: Double
    var allocationsPerOp: Double
    var iterations: Int

    var line: String {
        let ns = (medianNanoseconds * 10).rounded() / 10
        let allocs = (allocationsPerOp * 100).rounded() / 100
        return "\(name.padding(to: 44)) \(String(ns).leftPadding(to: 10)) ns/op  \(String(allocs).leftPadding(to: 7)) allocs/op  (\(iterations) ops)"
    }
}

func now() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Keeps a value alive so the optimizer cannot drop the work producing it.
@inline(never)
func blackHole<T>(_ value: T) {
    withExtendedLifetime(value) {}
}

func measure(_ name: String, batches: Int = 21, iterations: Int = 20_000, _ body: () -> Void) -> Measurement {
    for _ in 0..<(iterations / 10) { body() }  // warm-up
    var samples: [Double] = []
    samples.reserveCapacity(batches)
    let allocsBefore = c_alloc_counter_allocations()
    for _ in 0..<batches {
        let t0 = now()
        for _ in 0..<iterations { body() }
        let t1 = now()
        samples.append(Double(t1 - t0) / Double(iterations))
    }
    let allocated: UInt64 = UInt64(c_alloc_counter_allocations()) - UInt64(allocsBefore)
    let ops: Int = batches * iterations
    let allocs = Double(allocated) / Double(ops)
    samples.sort()
    return Measurement(name: name, medianNanoseconds: samples[samples.count / 2], allocationsPerOp: allocs,
                       iterations: batches * iterations)
}

extension String {
    func padding(to n: Int) -> String { count >= n ? self : self + String(repeating: " ", count: n - count) }
    func leftPadding(to n: Int) -> String { count >= n ? self : String(repeating: " ", count: n - count) + self }
}

func c_alloc_counter_allocations_checked() -> UInt64 { UInt64(c_alloc_counter_allocations()) }
