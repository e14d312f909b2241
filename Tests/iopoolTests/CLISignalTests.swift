import Glibc
import IOPool
import Testing

/// How the built `iopool` ends when its output or its user goes away: a closed stdout ends it with
/// exit status 1 and a line on stderr (not a silent death by SIGPIPE), and a second SIGINT during
/// the echo server's graceful shutdown cancels the open connections at once (it used to be ignored
/// until the grace period passed). The binary runs as a child process, as in
/// `AcceptOutOfDescriptorsTests`.
@Suite(.timeLimit(.minutes(2)))
struct CLISignalTests {
    @Test func aClosedStdoutEndsTheProgramWithAnErrorNotASignal() async throws {
        var fds: [CInt] = [0, 0]
        #expect(pipe(&fds) == 0)
        close(fds[0])  // the reader is gone before the first line is written: `iopool ... | head -0`
        let child = try CLIProcess(arguments: ["bench", "timers", "--sizes", "1000", "--repetitions", "1"], stdout: fds[1])
        close(fds[1])
        defer { child.killIfRunning() }
        let status = try await child.exitStatus(within: .seconds(60))
        #expect(status == .exited(1), "\(status); stderr: \(child.output)")
        #expect(child.output.contains("stdout was closed (EPIPE)"), "stderr: \(child.output)")
    }

    @Test func aSecondSignalCancelsTheOpenConnectionsAtOnce() async throws {
        let child = try CLIProcess(arguments: ["echo-server", "--port", "0", "--threads", "1", "--grace-period", "600"])
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

/// The built `iopool` with `arguments`, started with `posix_spawn`; stdout into `stdout` if given,
/// else with stderr into a temporary file. Signals are at their defaults in the child (as from a
/// shell), whatever the test process ignores or blocks. Ended only through its pid.
private final class CLIProcess: @unchecked Sendable {
    // Thread-safety: `pid` and `outputPath` are immutable; `ended` is touched only by the test's
    // own task, sequentially.
    let pid: pid_t
    let outputPath: String
    private var ended: ExitStatus?

    enum ExitStatus: Equatable, CustomStringConvertible {
        case exited(Int32)
        case killed(signal: Int32)
        var description: String {
            switch self {
            case .exited(let status): "exit status \(status)"
            case .killed(let signal): "killed by signal \(signal)"
            }
        }
    }

    init(arguments: [String], stdout: CInt? = nil) throws {
        var template = Array("/tmp/iopool-cli-XXXXXX".utf8CString)
        let outputFD = mkstemp(&template)
        guard outputFD >= 0 else { throw TestFailure("mkstemp failed: errno \(errno)") }
        close(outputFD)
        outputPath = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, outputPath, O_WRONLY | O_TRUNC, 0o600)
        if let stdout {
            posix_spawn_file_actions_adddup2(&actions, stdout, 1)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 2, 1)
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let executable = try iopoolExecutable()
        var cArguments = ([executable] + arguments).map { strdup($0) }
        cArguments.append(nil)
        defer { for argument in cArguments { free(argument) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, executable, &actions, &attributes, cArguments, environ)
        guard result == 0 else { throw TestFailure("posix_spawn \(executable) failed: errno \(result)") }
        pid = child
    }

    deinit {
        unlink(outputPath)
    }

    /// stderr (and stdout, unless redirected) so far.
    var output: String {
        guard let file = fopen(outputPath, "r") else { return "" }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes += buffer[..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    func listeningAddress(within limit: Duration) async throws -> SocketAddress {
        try await waitForOutput("listening on ", within: limit)
        let line = output.split(separator: "\n").first { $0.hasPrefix("listening on ") }!
        return try SocketAddress(String(line.dropFirst("listening on ".count)))
    }

    /// Polls the output until it contains `text`; throws if the process exits or `limit` passes first.
    func waitForOutput(_ text: String, within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while !output.contains(text) {
            if let status = try exitStatusNow() { throw TestFailure("iopool ended (\(status)) before printing '\(text)':\n\(output)") }
            guard ContinuousClock.now < deadline else { throw TestFailure("iopool did not print '\(text)' within \(limit):\n\(output)") }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Waits for the process to end; throws if it is still running after `limit`.
    func exitStatus(within limit: Duration) async throws -> ExitStatus {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let status = try exitStatusNow() { return status }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw TestFailure("iopool still runs \(limit) later:\n\(output)")
    }

    /// How the process ended (reaping it), or nil while it runs.
    func exitStatusNow() throws -> ExitStatus? {
        if let ended { return ended }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == 0 { return nil }
        guard result == pid else { throw TestFailure("waitpid(\(pid)) failed: errno \(errno)") }
        let signal = status & 0x7F
        ended = signal == 0 ? .exited((status >> 8) & 0xFF) : .killed(signal: signal)
        return ended
    }

    /// SIGKILL (by pid) if the test left it running, and reaps it.
    func killIfRunning() {
        guard (try? exitStatusNow()) == nil else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        ended = .killed(signal: SIGKILL)
    }
}
