import Glibc
import IOPool
import Testing

/// How the built `iopool` ends when its output or its user goes away: a closed stdout ends it with
/// exit status 1 and a line on stderr (not a silent death by SIGPIPE); SIGTERM or SIGINT shuts the
/// echo server down gracefully, with status 0 when its connections finish within --grace-period
/// and status 1 when they are cancelled after it. The binary runs as a child process (`ChildProcess`) with its
/// signals at their defaults, as from a shell, whatever the test process ignores or blocks.
@Suite(.timeLimit(.minutes(2)))
struct CLISignalTests {
    @Test func aClosedStdoutEndsTheProgramWithAnErrorNotASignal() async throws {
        var fds: [CInt] = [0, 0]
        #expect(pipe(&fds) == 0)
        close(fds[0])  // the reader is gone before the first line is written: `iopool ... | head -0`
        let child = try ChildProcess(iopool: ["bench", "timers", "--sizes", "1000", "--repetitions", "1"], stdout: fds[1], signalsAtDefaults: true)
        close(fds[1])
        defer { child.killIfRunning() }
        let status = try await child.exitStatus(within: .seconds(60))
        #expect(status == .exited(1), "\(status); stderr: \(child.output)")
        #expect(child.output.contains("stdout was closed (EPIPE)"), "stderr: \(child.output)")
    }

    // The echo server runs in a ServiceLifecycle ServiceGroup (SIGTERM/SIGINT: graceful shutdown;
    // --grace-period: its maximumGracefulShutdownDuration). Each pool, because the pool's own
    // graceful shutdown is what waits for the connections on it.

    @Test(arguments: ["io", "stealing", "global"])
    func sigtermExitsZeroOnceTheOpenConnectionsFinishWithinTheGracePeriod(pool: String) async throws {
        let child = try ChildProcess(
            iopool: ["echo-server", "--port", "0", "--threads", "1", "--grace-period", "60", "--pool", pool], signalsAtDefaults: true)
        defer { child.killIfRunning() }
        let address = try await child.listeningAddress(within: .seconds(60))
        let client = try await TCPStream.connect(to: address)
        defer { client.close() }
        try await client.write([42])
        #expect(try await client.read(maxBytes: 1) == [42])

        kill(child.pid, SIGTERM)
        try await child.waitForOutput("shutting down", within: .seconds(30))
        #expect(try child.exitStatusNow() == nil, "the graceful shutdown waits for the open connection")
        // Still served during the graceful shutdown; the client's half-close ends it.
        try await client.write([43])
        #expect(try await client.read(maxBytes: 1) == [43])
        try client.shutdown(.write)
        #expect(try await client.read(maxBytes: 1) == [], "the server half-closed back")
        let status = try await child.exitStatus(within: .seconds(30))
        #expect(status == .exited(0), "\(status); output: \(child.output)")
        #expect(!child.output.contains("grace period"), "output: \(child.output)")
    }

    @Test(arguments: ["io", "stealing", "global"])
    func theGracePeriodPassingCancelsTheOpenConnectionsAndExitsOne(pool: String) async throws {
        let child = try ChildProcess(
            iopool: ["echo-server", "--port", "0", "--threads", "1", "--grace-period", "0.5", "--pool", pool], signalsAtDefaults: true)
        defer { child.killIfRunning() }
        let address = try await child.listeningAddress(within: .seconds(60))
        // A connection the client never ends: the graceful shutdown cannot finish.
        let client = try await TCPStream.connect(to: address)
        defer { client.close() }
        try await client.write([42])
        #expect(try await client.read(maxBytes: 1) == [42])

        kill(child.pid, SIGINT)
        let status = try await child.exitStatus(within: .seconds(30))
        #expect(status == .exited(1), "\(status); output: \(child.output)")
        #expect(child.output.contains("the grace period (0.5 s) passed; cancelled the connections still open"), "output: \(child.output)")
        #expect(try await client.read(maxBytes: 1) == [], "the server closed the connection")
    }
}
