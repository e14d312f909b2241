import Hummingbird
import IOPool
import IOPoolHTTP
import IOPoolHummingbird
import IOPoolServiceLifecycle
import Logging
import ServiceLifecycle

/// Which of IOPool's pools a test serves its router on: every adapter behaviour is tested on both.
enum TestPool: String, CaseIterable, Sendable, CustomStringConvertible {
    case ioThreads, workStealing
    var description: String { rawValue }

    /// What `withIOPoolApp` names its pool's threads: a handler can tell where it runs.
    var threadNamePrefix: String { self == .ioThreads ? "hb-io-" : "hb-ws-" }

    /// A pool of `threads` threads of this kind, as a service to list before the app (so it stops
    /// last) and as the app's pool.
    func make(threads: Int, namePrefix: String) throws -> (service: any Service, pool: IOPoolApplicationPool) {
        switch self {
        case .ioThreads:
            let pool = try IOThreadPool(configuration: .init(threadCount: threads, threadNamePrefix: namePrefix))
            return (pool, .ioThreads(pool))
        case .workStealing:
            let pool = try WorkStealingPool(configuration: .init(threadCount: threads, threadNamePrefix: namePrefix))
            return (pool, .workStealing(pool))
        }
    }
}

/// Runs `router` with `IOPoolApplication` on a pool of its own on 127.0.0.1, port 0, in a
/// ServiceGroup of [pool, app] (the pool stops last), gives `body` the bound address, then shuts
/// the group down gracefully and waits for it: a test that returns has seen the server stop.
func withIOPoolApp<Result: Sendable>(
    _ router: Router<IOPoolRequestContext>, on testPool: TestPool, threads: Int = 1,
    server: HTTPServer.Configuration = .init(),
    _ body: (SocketAddress) async throws -> Result
) async throws -> Result {
    let (poolService, pool) = try testPool.make(threads: threads, namePrefix: testPool.threadNamePrefix)
    let (addresses, addressContinuation) = AsyncStream.makeStream(of: SocketAddress.self)
    let app = IOPoolApplication(
        router: router,
        configuration: .init(address: .loopbackIPv4(port: 0), serverName: "iopool-test", server: server),
        pool: pool,
        onServerRunning: { addressContinuation.yield($0) })
    let group = ServiceGroup(configuration: .init(services: [poolService, app], logger: Logger(label: "hb-test")))
    let running = GroupRun(group)
    do {
        var iterator = addresses.makeAsyncIterator()
        guard let address = await iterator.next() else { throw CancellationError() }
        let result = try await body(address)
        await group.triggerGracefulShutdown()
        try await running.waitForEnd(within: .seconds(20))
        return result
    } catch {
        await group.triggerGracefulShutdown()
        running.task.cancel()
        _ = await running.task.result
        throw error
    }
}
