import Hummingbird
import IOPool
import IOPoolHummingbird
import IOPoolServiceLifecycle
import Logging
import ServiceLifecycle

/// Runs `router` with `IOPoolApplication` on a pool of its own on 127.0.0.1, port 0, in a
/// ServiceGroup of [pool, app] (the pool stops last), gives `body` the bound address, then shuts
/// the group down gracefully and waits for it: a test that returns has seen the server stop.
func withIOPoolApp<Result: Sendable>(
    _ router: Router<IOPoolRequestContext>, threads: Int = 1,
    _ body: (SocketAddress) async throws -> Result
) async throws -> Result {
    let pool = try IOThreadPool(configuration: .init(threadCount: threads, threadNamePrefix: "hb-test-"))
    let (addresses, addressContinuation) = AsyncStream.makeStream(of: SocketAddress.self)
    let app = IOPoolApplication(
        router: router,
        configuration: .init(address: .loopbackIPv4(port: 0), serverName: "iopool-test"),
        pool: pool,
        onServerRunning: { addressContinuation.yield($0) })
    let group = ServiceGroup(configuration: .init(services: [pool, app], logger: Logger(label: "hb-test")))
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
