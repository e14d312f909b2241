import Dispatch
@testable import IOPool
import Testing

/// Where a test body runs: a task of each pool, or off-pool (a plain `Task` on Swift's global executor).
enum TestPlace: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case ioThread, workStealing, offPool
    var testDescription: String { rawValue }

    /// Runs `body` in this place (on a fresh two-thread pool, shut down afterwards).
    func run<Success: Sendable>(_ body: @escaping @Sendable () async throws -> Success) async throws -> Success {
        switch self {
        case .ioThread:
            let pool = try IOThreadPool(configuration: .init(threadCount: 2))
            let result = await Result { try await value(of: try pool.spawn(body)) {} }
            await pool.shutdown()
            return try result.get()
        case .workStealing:
            let pool = try WorkStealingPool(configuration: .init(threadCount: 2))
            let result = await Result { try await value(of: try pool.spawn(body)) {} }
            await pool.shutdown()
            return try result.get()
        case .offPool:
            return try await value(of: Task.detached { try await body() }) {}
        }
    }
}

enum TaskLocalProbe {
    @TaskLocal static var requestID: String?
}

/// `blocking { }` keeps the calling task's task-local values (ServiceContext, logging metadata) in
/// every context: on a worker and on an IOThread the body runs in the task's own job; off-pool it runs
/// on a blocking thread, in a job of the task (not on a bare thread, where every task-local reads nil).
@Suite(.timeLimit(.minutes(1)))
struct TaskLocalBlockingTests {
    @Test(arguments: TestPlace.allCases)
    func taskLocalsAreVisibleInsideBlocking(_ place: TestPlace) async throws {
        let (inside, name, after) = try await place.run {
            try await TaskLocalProbe.$requestID.withValue("request-7") {
                let (inside, name) = try await blocking { (TaskLocalProbe.requestID, currentThreadName()) }
                return (inside, name, TaskLocalProbe.requestID)
            }
        }
        #expect(inside == "request-7")
        #expect(after == "request-7")
        if place == .offPool { #expect(name.hasPrefix("iopool-blocking"), "off-pool the body runs on a blocking thread") }
    }

    /// Off-pool, the task leaves the blocking thread when `blocking` returns (its code after the call
    /// runs on Swift's global executor again, not on the thread the reserve keeps for bodies).
    @Test func offPoolTheTaskLeavesTheBlockingThreadAfterwards() async throws {
        let (inside, after) = try await Task.detached {
            let inside = try await blocking { currentThreadName() }
            return (inside, currentThreadName())
        }.value
        #expect(inside.hasPrefix("iopool-blocking"))
        #expect(!after.hasPrefix("iopool-blocking"))
    }

    /// A task that waits in line for a unit of its pool's budget still has its task-locals when its
    /// body runs (on its worker, or on a blocking thread if waiting moved it off one).
    @Test func taskLocalsSurviveWaitingForTheBudget() async throws {
        let pool = try WorkStealingPool(configuration: .init(threadCount: 2, maxBlocking: 1))
        let release = DispatchSemaphore(value: 0)
        let holding = try pool.spawn { try await blocking { release.wait() } }
        while pool.capacity.snapshot.running < 1 { try await Task.sleep(for: .milliseconds(1)) }
        let waiter = try pool.spawn {
            try await TaskLocalProbe.$requestID.withValue("queued") {
                try await blocking { TaskLocalProbe.requestID }
            }
        }
        while pool.capacity.snapshot.waiting < 1 { try await Task.sleep(for: .milliseconds(1)) }
        release.signal()
        try await holding.value
        #expect(try await waiter.value == "queued")
        await pool.shutdown()
    }
}
