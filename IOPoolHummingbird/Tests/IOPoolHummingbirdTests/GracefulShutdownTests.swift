import Hummingbird
import IOPool
import IOPoolHummingbird
import IOPoolServiceLifecycle
import Logging
import ServiceLifecycle
import Testing

/// IOPoolApplication in a ServiceGroup: the group's graceful shutdown is the server's (stop
/// accepting, close idle keep-alive connections), and the group returns once it has drained.
@Suite(.timeLimit(.minutes(1))) struct GracefulShutdownTests {
    @Test(arguments: TestPool.allCases) func gracefulShutdownClosesAnIdleKeepAliveConnectionAndTheGroupReturns(pool testPool: TestPool) async throws {
        let (poolService, pool) = try testPool.make(threads: 1, namePrefix: "hb-shutdown-")
        let (addresses, addressContinuation) = AsyncStream.makeStream(of: SocketAddress.self)
        let app = IOPoolApplication(
            router: buildRouter(), configuration: .init(address: .loopbackIPv4(port: 0)), pool: pool,
            onServerRunning: { addressContinuation.yield($0) })
        let group = ServiceGroup(configuration: .init(services: [poolService, app], logger: Logger(label: "hb-test")))
        let running = GroupRun(group)
        defer { running.task.cancel() }
        var iterator = addresses.makeAsyncIterator()
        let address = try #require(await iterator.next())

        let client = try await RawHTTPClient(connectingTo: address)
        try await client.send("GET /hello/idle HTTP/1.1\r\nHost: test\r\n\r\n")
        #expect(try await client.readResponse().status == 200)

        await group.triggerGracefulShutdown()
        // The open, idle connection does not hold the shutdown up: the server closes it.
        try await running.waitForEnd(within: .seconds(10))
        #expect(try await client.reader.read(maxBytes: 1) == [], "the server closed the idle connection")
        await #expect(throws: (any Error).self, "nothing listens any more") {
            _ = try await TCPStream.connect(to: address, timeout: .seconds(5))
        }
    }
}
