#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time in milliseconds since 1970, injected so that tests control time.
public protocol RegistrarClock: Sendable {
    func nowMilliseconds() -> Int64
}

/// The system's real-time clock.
public struct SystemRegistrarClock: RegistrarClock {
    public init() {}
    public func nowMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// A clock that moves only when told to.
public final class ManualRegistrarClock: RegistrarClock {
    private let now: LockedState<Int64>

    public init(milliseconds: Int64 = 1_700_000_000_000) { now = LockedState(milliseconds) }

    public func nowMilliseconds() -> Int64 { now.withLock { $0 } }

    /// Moves the clock forward (or backward, for clock-jump tests).
    public func advance(seconds: Double) {
        now.withLock { $0 += Int64(seconds * 1000) }
    }

    public func set(milliseconds: Int64) { now.withLock { $0 = milliseconds } }
}
