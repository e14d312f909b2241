import Glibc
import IOPool
import Testing

/// How the built `iopool` ends when its output or its user goes away: a closed stdout ends it with
/// exit status 1 and a line on stderr (not a silent death by SIGPIPE), and a second SIGINT during
/// the echo server's graceful shutdown cancels the open connections at once (it used to be ignored
/// until the grace period passed). The binary runs as a child process (`ChildProcess`) with its
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

    @Test func aSecondSignalCancelsTheOpenConnectionsAtOnce() async throws {
        let child = try ChildProcess(iopool: ["echo-server", "--port", "0", "--threads", "1", "--grace-period", "600"], signalsAtDefaults: true)
        defer { child.killIfRunning() }
        let address = try await child.listeningAddress(within: .seconds(60))
        // A connection the server is serving: the graceful shutdown would wait for it for 600 s.
        let client = try await TCPStream.connect(to: address)
        defer { client.close() }
        try await client.write([42])
        #expect(try await client.read(maxBytes: 1) == [42])

        kill(child.pid, SIGINT)
        try await child.waitForOutput("shutting down", within: .seconds(30))
        #expect(try child.exitStatusNow() == nil, "the first SIGINT waits for the open connection")
        kill(child.pid, SIGINT)
        let status = try await child.exitStatus(within: .seconds(20))
        #expect(status == .exited(0), "\(status); output: \(child.output)")
        #expect(child.output.contains("SIGINT again, cancelled the connections still open"), "output: \(child.output)")
        #expect(try await client.read(maxBytes: 1) == [], "the server closed the connection")
    }
}
