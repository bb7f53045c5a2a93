import NIOCore

/// Runs tasks on a NIO event loop. Request handling prefers the loop the request arrived
/// on: no hop to Swift's cooperative pool and back, and a blocked pool (a busy process,
/// synchronous work elsewhere) cannot stall SIP answers.
final class EventLoopTaskExecutor: TaskExecutor, Sendable {
    let loop: any EventLoop

    init(_ loop: any EventLoop) { self.loop = loop }

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        loop.execute {
            unowned.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
