// `SleepDispatcher`: which timers a sleep is armed on, by where the task runs. Every sleep of the
// library goes through here: `sleep(for:)`, `sleep(until:)`, `IOClock.sleep(until:tolerance:)`
// and a listener's accept back-off.

/// Arms a sleep on the timers of where the calling task runs (`ExecutionContext`): the current
/// IOThread's loop, the current WorkStealingPool's shared driver, or (elsewhere) the default
/// pool's next thread, which the task visits for the sleep only.
enum SleepDispatcher {
    /// Suspends the calling task until `deadline` (CLOCK_MONOTONIC nanoseconds).
    static func sleep(untilNanoseconds deadline: UInt64) async throws {
        switch ExecutionContext.current {
        case .ioThread(let thread):
            try await thread.sleepOnLoop(untilNanoseconds: deadline)
        case .workStealingPool(let pool):
            try await pool.driver.sleep(untilNanoseconds: deadline)
        case .elsewhere:
            let thread = IOThreadPool.default.next()
            try await withTaskExecutorPreference(thread) {
                try await sleepHopping(to: thread, untilNanoseconds: deadline)
            }
        }
    }

    /// Suspends the calling task for `nanoseconds` from now.
    static func sleep(nanoseconds: UInt64) async throws {
        try await sleep(untilNanoseconds: monotonicDeadline(afterNanoseconds: nanoseconds))
    }

    @concurrent
    private static func sleepHopping(to thread: IOThread, untilNanoseconds deadline: UInt64) async throws {
        // Runs with `thread` as task executor preference, hence on that thread.
        try await thread.sleepOnLoop(untilNanoseconds: deadline)
    }
}
