import Dispatch
@testable import IOPool
import Testing

/// `sleep`, `IOClock.sleep`, `withTimeout`, `TCPStream.connect` and `blocking` are
/// `nonisolated(nonsending)`: a task on an IOThread stays on it through each, and an actor (pinned
/// to an IOThread, or a default one) is back on its thread/isolation after each.
@Suite(.timeLimit(.minutes(1)))
struct NoHopTests {
    /// An actor pinned to one thread of a private pool.
    actor Pinned {
        let thread: IOThread
        init(thread: IOThread) { self.thread = thread }
        nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }

        func onThread() -> Bool { IOThread.current === thread }

        func sleepFor(_ duration: Duration) async throws -> Bool {
            try await sleep(for: duration)
            return IOThread.current === thread
        }

        func clockSleep() async throws -> Bool {
            try await IOClock().sleep(until: IOClock.now.advanced(by: .milliseconds(1)))
            return IOThread.current === thread
        }

        func timeoutRunsHere() async throws -> (inside: Bool, after: Bool) {
            let inside = try await withTimeout(.seconds(30)) { IOThread.current === self.thread }
            return (inside, IOThread.current === thread)
        }

        func connect(to address: SocketAddress) async throws -> Bool {
            let stream = try await TCPStream.connect(to: address)
            stream.close()
            return IOThread.current === thread
        }

    }

    @Test func aPinnedActorStaysOnItsThreadAcrossEveryCall() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let actor = Pinned(thread: pool.threads[1])
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        defer { listener.close() }
        #expect(try await actor.sleepFor(.milliseconds(1)))
        #expect(try await actor.clockSleep())
        let (inside, after) = try await actor.timeoutRunsHere()
        #expect(inside && after)
        #expect(try await actor.connect(to: try listener.localAddress))
        await pool.shutdownGracefully()
    }

    /// `blocking` from an actor does not keep the actor busy: another call on it completes while
    /// the body blocks.
    @Test func blockingFromAnActorLeavesTheActorFree() async throws {
        actor Holder {
            func block(until release: DispatchSemaphore) async throws { try await blocking { release.wait() } }
            func ping() -> Bool { true }
        }
        let holder = Holder()
        let release = DispatchSemaphore(value: 0)
        let blocked = Task { try await holder.block(until: release) }
        try await sleep(for: .milliseconds(5))
        #expect(await holder.ping(), "the actor answered while its blocking body ran")
        release.signal()
        try await blocked.value
    }

    /// A task on an IOThread stays on it across each call (a nonsending call runs where the caller runs).
    @Test func anIOThreadTaskStaysOnItsThread() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let thread = pool.threads[1]
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        defer { listener.close() }
        let address = try listener.localAddress
        let results = try await thread.spawn { () async throws -> [Bool] in
            var results: [Bool] = []
            try await sleep(for: .milliseconds(1)); results.append(IOThread.current === thread)
            try await IOClock().sleep(until: IOClock.now); results.append(IOThread.current === thread)
            results.append(try await withTimeout(.seconds(30)) { IOThread.current === thread })
            results.append(IOThread.current === thread)
            let stream = try await TCPStream.connect(to: address); stream.close()
            results.append(IOThread.current === thread)
            results.append(try await blocking { true } && IOThread.current === thread)
            return results
        }.value
        #expect(results == Array(repeating: true, count: 6))
        await pool.shutdownGracefully()
    }

    @Test func ioClockNowIsStaticLikeTheStandardClocks() {
        let before = IOClock.now
        let instance = IOClock().now
        #expect(before <= instance)
        #expect(instance <= IOClock.now)
    }
}
