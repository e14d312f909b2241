// Allocations (and wall time) per echo round trip and per spawn, with ordo-one/benchmark:
//
//     swift package --package-path Benchmarks benchmark --target IOPoolBenchmarks
//
// Every benchmark runs `scalingFactor` (1,000) operations per iteration; the plugin divides the
// metrics marked `*` by it, so the table reads "per round trip" / "per spawn" (pass `--scale` to
// see the whole iteration instead).
//
// Echo round trip. A server runs in this process (IOThreadPool, WorkStealingPool, and SwiftNIO's
// two servers for comparison), each with one thread. The client is a plain blocking socket
// (`send` 64 bytes, `recv` 64 bytes): it makes no allocation, so the malloc count of a round trip
// is the server's, all of its threads together (the interposer counts the whole process). The
// IOPool servers run the same code as `iopool echo-server`: an accept loop whose connections are
// spawned on the pool, each running `copy(from:to:)`.
//
// Spawn. "local": a task on the pool spawns a child where it runs (the free function `spawn`)
// and awaits its value; the baseline is `Task { }` from a task on Swift's global executor.
// "remote": the benchmark's own task (on the global executor) calls `pool.spawn` and awaits the
// value: the cross-thread path. The outer task of the local form is one per 1,000 spawns.
//
// State (servers, pools) is made in each benchmark's `setup` and torn down in its `teardown`, so
// only the operation itself is measured.

import Benchmark
import IOPool
import NIOCore
import NIOEchoServers
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// Bytes per echo message: the ping-pong size of `iopool bench echo` and `iopool load`.
let messageSize = 64

let benchmarks: @Sendable () -> Void = {
    let echoConfiguration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 3,
        scalingFactor: .kilo,  // 1,000 operations per iteration; reported per operation
        maxDuration: .seconds(3),
        maxIterations: 200
    )
    for server in EchoServerKind.allCases {
        let fixture = EchoFixture(server)
        Benchmark("echo round trip 64 B: \(server.rawValue)", configuration: echoConfiguration) { benchmark in
            let client = fixture.client
            for _ in benchmark.scaledIterations {
                client.roundTrip()
            }
        } setup: {
            try await fixture.setUp()
        } teardown: {
            await fixture.tearDown()
        }
    }

    let spawnConfiguration = Benchmark.Configuration(
        metrics: [.wallClock, .throughput, .mallocCountTotal],
        warmupIterations: 3,
        scalingFactor: .kilo,  // 1,000 operations per iteration; reported per operation
        maxDuration: .seconds(2),
        maxIterations: 500
    )
    let pools = SpawnPools()

    Benchmark("spawn local: IOThreadPool", configuration: spawnConfiguration) { benchmark in
        let count = benchmark.scaledIterations.count
        let parent = try! pools.io.spawn {
            for _ in 0..<count { blackHole(await spawn { 1 }.value) }
        }
        await parent.value
    } setup: { try pools.start() } teardown: { await pools.stop() }

    Benchmark("spawn local: WorkStealingPool", configuration: spawnConfiguration) { benchmark in
        let count = benchmark.scaledIterations.count
        let parent = try! pools.stealing.spawn {
            for _ in 0..<count { blackHole(await spawn { 1 }.value) }
        }
        await parent.value
    } setup: { try pools.start() } teardown: { await pools.stop() }

    Benchmark("spawn local: Task {} on the global executor", configuration: spawnConfiguration) { benchmark in
        let count = benchmark.scaledIterations.count
        let parent = Task {
            for _ in 0..<count { blackHole(await Task { 1 }.value) }
        }
        await parent.value
    }

    Benchmark("spawn remote: IOThreadPool", configuration: spawnConfiguration) { benchmark in
        let pool = pools.io
        for _ in benchmark.scaledIterations {
            let task = try! pool.spawn { 1 }
            blackHole(await task.value)
        }
    } setup: { try pools.start() } teardown: { await pools.stop() }

    Benchmark("spawn remote: WorkStealingPool", configuration: spawnConfiguration) { benchmark in
        let pool = pools.stealing
        for _ in benchmark.scaledIterations {
            let task = try! pool.spawn { 1 }
            blackHole(await task.value)
        }
    } setup: { try pools.start() } teardown: { await pools.stop() }
}

// MARK: Spawn

/// The two pools the spawn benchmarks use, one thread each (so that "local" is the same thread).
///
/// @unchecked Sendable: the runner calls a benchmark's setup, then its iterations, then its
/// teardown, one after another (each awaited), never two benchmarks at once; `start()` and
/// `stop()` are the only writers, and the benchmark closures read between them.
final class SpawnPools: @unchecked Sendable {
    private var ioPool: IOThreadPool?
    private var stealingPool: WorkStealingPool?

    var io: IOThreadPool {
        guard let ioPool else { preconditionFailure("SpawnPools.io used outside setup/teardown") }
        return ioPool
    }

    var stealing: WorkStealingPool {
        guard let stealingPool else { preconditionFailure("SpawnPools.stealing used outside setup/teardown") }
        return stealingPool
    }

    func start() throws {
        ioPool = try IOThreadPool(configuration: .init(threadCount: 1, threadNamePrefix: "bench-io-"))
        stealingPool = try WorkStealingPool(configuration: .init(threadCount: 1, threadNamePrefix: "bench-ws-"))
    }

    func stop() async {
        await ioPool?.shutdownGracefully()
        await stealingPool?.shutdownGracefully()
        ioPool = nil
        stealingPool = nil
    }
}

// MARK: Echo

enum EchoServerKind: String, CaseIterable {
    case ioThreadPool = "IOThreadPool"
    case workStealingPool = "WorkStealingPool"
    case nioHandler = "SwiftNIO handler"
    case nioAsync = "SwiftNIO NIOAsyncChannel"
}

/// An echo server in this process, one thread, and a blocking client connected to it.
///
/// @unchecked Sendable: as for ``SpawnPools``, `setUp()` and `tearDown()` are the only writers
/// and the runner never overlaps them with the benchmark's iterations.
final class EchoFixture: @unchecked Sendable {
    let kind: EchoServerKind
    private var connectedClient: BlockingEchoClient?
    private var stopServer: (() async -> Void)?

    init(_ kind: EchoServerKind) {
        self.kind = kind
    }

    var client: BlockingEchoClient {
        guard let connectedClient else { preconditionFailure("EchoFixture.client used outside setup/teardown") }
        return connectedClient
    }

    func setUp() async throws {
        let port: Int
        switch kind {
        case .ioThreadPool:
            let pool = try IOThreadPool(configuration: .init(threadCount: 1, threadNamePrefix: "bench-echo-io-"))
            let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
            try pool.spawn { await acceptAndEcho(listener) }
            port = Int(try listener.localAddress.port)
            stopServer = {
                listener.close()
                await pool.shutdownGracefully()
            }
        case .workStealingPool:
            let pool = try WorkStealingPool(configuration: .init(threadCount: 1, threadNamePrefix: "bench-echo-ws-"))
            let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
            try pool.spawn { await acceptAndEcho(listener) }
            port = Int(try listener.localAddress.port)
            stopServer = {
                listener.close()
                await pool.shutdownGracefully()
            }
        case .nioHandler:
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let server = try await startHandlerEchoServer(group: group, host: "127.0.0.1", port: 0)
            port = server.localAddress!.port!
            stopServer = {
                try? await server.close()
                try? await group.shutdownGracefully()
            }
        case .nioAsync:
            let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
            let listener = try await bindAsyncEchoServer(group: group, host: "127.0.0.1", port: 0)
            port = listener.channel.localAddress!.port!
            let serving = Task { try await serveAsyncEchoServer(listener) }
            stopServer = {
                serving.cancel()
                _ = await serving.result
                try? await group.shutdownGracefully()
            }
        }
        connectedClient = BlockingEchoClient(port: port, size: messageSize)
        client.roundTrip()  // the connection is accepted and echoing before the first iteration
    }

    func tearDown() async {
        connectedClient?.finish()
        connectedClient = nil
        await stopServer?()
        stopServer = nil
    }
}

/// The echo of `iopool echo-server`: each connection a task of its own on the caller's pool,
/// copying until the client half-closes, then half-closing back.
private func acceptAndEcho(_ listener: TCPListener) async {
    do {
        for try await connection in listener.connections {
            spawn {
                defer { connection.close() }
                do {
                    _ = try await copy(from: connection, to: connection)
                    try connection.shutdown(.write)
                } catch {
                    // A client that went away; nothing to report.
                }
            }
        }
    } catch {
        // The listener was closed by teardown.
    }
}

/// A client on a blocking socket: sends `size` bytes, receives `size` bytes. The buffers are
/// allocated once, so a round trip makes no allocation of its own.
///
/// Not Sendable: one benchmark iteration uses it at a time.
final class BlockingEchoClient {
    private let fd: CInt
    private let size: Int
    private let message: UnsafeMutableRawBufferPointer
    private let reply: UnsafeMutableRawBufferPointer

    init(port: Int, size: Int) {
        self.size = size
        message = .allocate(byteCount: size, alignment: 16)
        reply = .allocate(byteCount: size, alignment: 16)
        for index in 0..<size { message[index] = UInt8(truncatingIfNeeded: index &* 31 &+ 7) }

        fd = socket(AF_INET, CInt(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0, "socket() failed: errno \(errno)")
        var one: CInt = 1
        setsockopt(fd, CInt(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<CInt>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian  // 127.0.0.1
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        precondition(result == 0, "connect to 127.0.0.1:\(port) failed: errno \(errno)")
    }

    deinit {
        message.deallocate()
        reply.deallocate()
    }

    /// One ping-pong: send the message, read the whole echo, check it.
    func roundTrip() {
        var sent = 0
        while sent < size {
            let count = send(fd, message.baseAddress! + sent, size - sent, CInt(MSG_NOSIGNAL))
            if count < 0 && errno == EINTR { continue }
            precondition(count > 0, "send failed: errno \(errno)")
            sent += count
        }
        var received = 0
        while received < size {
            let count = recv(fd, reply.baseAddress! + received, size - received, 0)
            if count < 0 && errno == EINTR { continue }
            precondition(count > 0, "echo server closed the connection or failed: errno \(errno)")
            received += count
        }
        precondition(memcmp(message.baseAddress!, reply.baseAddress!, size) == 0, "the echo differs from the message")
    }

    /// Half-closes, waits for the server to close its side, and closes the socket.
    func finish() {
        shutdown(fd, CInt(SHUT_WR))
        while recv(fd, reply.baseAddress!, size, 0) > 0 {}
        close(fd)
    }
}
