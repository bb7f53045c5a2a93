#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall-clock time in milliseconds since 1970, injected so that tests control time.
public protocol RegistrarClock: Sendable {
    /// The current time, milliseconds since 1970 (UTC).
    func nowMilliseconds() -> Int64
}

/// The system's real-time clock.
public struct SystemRegistrarClock: RegistrarClock {
    /// The system clock.
    public init() {}
    /// `CLOCK_REALTIME`, in milliseconds since 1970.
    public func nowMilliseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
    }
}

/// A clock that moves only when told to.
public final class ManualRegistrarClock: RegistrarClock {
    private let now: LockedState<Int64>

    /// A clock standing at `milliseconds` since 1970 (by default a moment in November 2023).
    public init(milliseconds: Int64 = 1_700_000_000_000) { now = LockedState(milliseconds) }

    /// The time the clock was last set or advanced to.
    public func nowMilliseconds() -> Int64 { now.withLock { $0 } }

    /// Moves the clock forward (or backward, for clock-jump tests).
    public func advance(seconds: Double) {
        now.withLock { $0 += Int64(seconds * 1000) }
    }

    /// Sets the clock to `milliseconds` since 1970.
    public func set(milliseconds: Int64) { now.withLock { $0 = milliseconds } }
}
