import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
@testable import SIPTransport
import Testing

/// The dispatcher's timers: fire once, in order of their deadlines, never after a cancel,
/// and a cancelled timer costs nothing but its slot.
@Suite struct TimerWheelTests {
    @Test func firesInOrderAndNeverWhenCancelled() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let wheel = TimerWheel(loop: group.next())
        let fired = NIOLockedValueBox<[Int]>([])
        let t3 = wheel.schedule(after: .milliseconds(60)) { fired.withLockedValue { $0.append(3) } }
        _ = wheel.schedule(after: .milliseconds(40)) { fired.withLockedValue { $0.append(2) } }
        _ = wheel.schedule(after: .milliseconds(5)) { fired.withLockedValue { $0.append(1) } }
        let cancelled = wheel.schedule(after: .milliseconds(20)) { fired.withLockedValue { $0.append(99) } }
        cancelled.cancel()
        // Beyond one turn of the wheel (1,024 slots of 10 ms): must wait its rounds.
        let started = ContinuousClock.now
        let late = wheel.schedule(after: .seconds(11)) { fired.withLockedValue { $0.append(100) } }
        try await Task.sleep(for: .milliseconds(300))
        // A loaded machine can sleep much longer than asked: judge the 11 s timer by the time that passed.
        let early = ContinuousClock.now - started < .milliseconds(10_900)
        let seen = fired.withLockedValue { $0 }
        #expect(Array(seen.prefix(3)) == [1, 2, 3])
        if early {
            #expect(seen == [1, 2, 3], "the 11 s timer fired early")
            #expect(wheel.pending == 1, "the 11 s timer is still armed")
        }
        t3.cancel()  // after firing: nothing happens
        late.cancel()
        wheel.stop()
        try await group.shutdownGracefully()
    }

    @Test func manyCancelledTimersAreDropped() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let wheel = TimerWheel(loop: group.next())
        for _ in 0..<10_000 { wheel.schedule(after: .milliseconds(30)) {}.cancel() }
        try await Task.sleep(for: .milliseconds(200))
        #expect(wheel.pending == 0)
        wheel.stop()
        try await group.shutdownGracefully()
    }
}
