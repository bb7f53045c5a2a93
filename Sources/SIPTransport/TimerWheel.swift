import NIOConcurrencyHelpers
import NIOCore
import SIPMessage
import Synchronization

/// A hashed timer wheel for one event loop: O(1) to arm, O(1) to cancel, fired by one
/// repeating task every ``resolution``.
///
/// The proxy arms and disarms several timers per request (Timers A, B, C, D, E, F, K, M,
/// RFC 3261 17.1; 16.6 step 11), most of which never fire. NIO's scheduled tasks keep a
/// heap in which a cancellation searches linearly, so with tens of thousands of armed
/// timers (Timer C alone lasts 181 s) every cancellation cost more as the load grew. Here a
/// cancelled timer only sets a flag and is dropped when its slot comes round.
final class TimerWheel: Sendable {
    /// 10 ms: far below T1 (500 ms), the shortest interval the transactions use.
    static let resolutionNanoseconds: UInt64 = 10_000_000
    static let slotCount = 1_024

    struct Entry: Sendable {
        var due: UInt64
        var timer: WheelTimer
    }

    struct State: Sendable {
        var slots = [[Entry]](repeating: [], count: TimerWheel.slotCount)
        /// The last tick whose slot was processed.
        var tick: UInt64
        var pending = 0
    }

    private let state: NIOLockedValueBox<State>
    private let task = NIOLockedValueBox<RepeatedTask?>(nil)

    init(loop: any EventLoop) {
        state = NIOLockedValueBox(State(tick: Self.nowTick()))
        let resolution = TimeAmount.nanoseconds(Int64(Self.resolutionNanoseconds))
        let repeated = loop.scheduleRepeatedTask(initialDelay: resolution, delay: resolution) { [weak self] _ in
            self?.advance()
        }
        task.withLockedValue { $0 = repeated }
    }

    static func nowTick() -> UInt64 { NIODeadline.now().uptimeNanoseconds / resolutionNanoseconds }

    /// Runs `body` after `delay` (rounded up to the next tick) on the wheel's loop.
    func schedule(after delay: Duration, _ body: @escaping @Sendable () -> Void) -> WheelTimer {
        let timer = WheelTimer(body)
        let ticks = max(1, (UInt64(max(0, delay.nanoseconds)) + Self.resolutionNanoseconds - 1) / Self.resolutionNanoseconds)
        let due = Self.nowTick() + ticks
        state.withLockedValue { s in
            s.slots[Int(due % UInt64(Self.slotCount))].append(Entry(due: due, timer: timer))
            s.pending += 1
        }
        return timer
    }

    /// Timers armed and not yet fired or dropped (cancelled ones included until their slot comes round).
    var pending: Int { state.withLockedValue { $0.pending } }

    /// Fires what is due: every slot between the last tick processed and now.
    func advance() {
        let now = Self.nowTick()
        var due: [WheelTimer] = []
        state.withLockedValue { s in
            guard s.pending > 0 else {
                s.tick = now
                return
            }
            // After a long stall, one pass over every slot is enough.
            let last = min(now, s.tick + UInt64(Self.slotCount))
            while s.tick < last {
                s.tick += 1
                let i = Int(s.tick % UInt64(Self.slotCount))
                guard !s.slots[i].isEmpty else { continue }
                var keep: [Entry] = []
                for e in s.slots[i] {
                    if e.due <= now {
                        s.pending -= 1
                        if !e.timer.isCancelled { due.append(e.timer) }
                    } else if e.timer.isCancelled {
                        s.pending -= 1
                    } else {
                        keep.append(e)
                    }
                }
                s.slots[i] = keep
            }
            s.tick = now
        }
        for t in due { t.fire() }
    }

    func stop() {
        task.withLockedValue { $0?.cancel() }
    }
}

/// One armed timer of a ``TimerWheel``.
final class WheelTimer: SIPScheduledTimer {
    private let cancelled = Atomic<Bool>(false)
    private let body: @Sendable () -> Void

    init(_ body: @escaping @Sendable () -> Void) { self.body = body }

    var isCancelled: Bool { cancelled.load(ordering: .relaxed) }

    func cancel() { cancelled.store(true, ordering: .relaxed) }

    func fire() {
        guard !cancelled.exchange(true, ordering: .relaxed) else { return }
        body()
    }
}
