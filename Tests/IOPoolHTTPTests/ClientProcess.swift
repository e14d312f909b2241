import Glibc

/// A real HTTP client program (curl, wrk, h2load, python3) run once to its end by a test: started
/// with `posix_spawn`, stdin from a file (the bytes the test gives, or /dev/null), stdout and
/// stderr into temporary files that are read once it has ended.
///
/// Its end is awaited by polling `waitpid(WNOHANG)` between `Task.sleep`s, so that no thread of
/// Swift's global executor ever blocks on it; past its time limit it is killed (by its pid) and
/// the test fails with what it had written.
struct ClientRun: CustomStringConvertible {
    let command: [String]
    let status: ExitStatus
    let stdout: [UInt8]
    let stderr: String

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

    var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    var succeeded: Bool { status == .exited(0) }

    /// For failure messages: the command, how it ended and the ends of its output.
    var description: String {
        "`\(command.joined(separator: " "))` ended with \(status)\n--- stdout (end):\n\(printableStdout)\n--- stderr (end):\n\(String(stderr.suffix(4000)))"
    }

    /// The end of stdout, or its size when it is binary (an echoed body).
    private var printableStdout: String {
        let isText = stdout.allSatisfy { (0x20..<0x7F).contains($0) || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
        return isText ? String(stdoutText.suffix(2000)) : "(\(stdout.count) bytes, not text)"
    }

    /// Runs `tool` with `arguments` to its end; throws if it has not ended within `limit` (it is
    /// then killed) or cannot start. A nonzero exit is not thrown: the test checks `status`.
    static func run(
        _ tool: ClientTool, _ arguments: [String], stdin: [UInt8]? = nil, within limit: Duration = .seconds(30)
    ) async throws -> ClientRun {
        let executable = try tool.executable()
        let command = [executable] + arguments
        let stdoutFile = try TemporaryFile()
        let stderrFile = try TemporaryFile()
        let stdinFile = try stdin.map { try TemporaryFile(contents: $0) }
        let pid = try spawn(command, stdin: stdinFile?.path ?? "/dev/null", stdout: stdoutFile.path, stderr: stderrFile.path)
        let status = try await waitForExit(pid, within: limit) {
            "`\(command.joined(separator: " "))` still ran after \(limit) and was killed\n--- stderr:\n\(String(decoding: ((try? stderrFile.contents()) ?? []).suffix(4000), as: UTF8.self))"
        }
        return ClientRun(
            command: command, status: status, stdout: try stdoutFile.contents(),
            stderr: String(decoding: try stderrFile.contents(), as: UTF8.self))
    }

    private static func spawn(_ command: [String], stdin: String, stdout: String, stderr: String) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdin, O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdout, O_WRONLY | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderr, O_WRONLY | O_TRUNC, 0o600)

        // The spawning thread's signal mask and ignored signals are inherited, and the pools'
        // threads block or ignore some (SIGPIPE): the client starts as it would from a shell.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGTERM, SIGPIPE, SIGALRM] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        var arguments = command.map { strdup($0) }
        arguments.append(nil)
        defer { for argument in arguments { free(argument) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, command[0], &actions, &attributes, arguments, environ)
        guard result == 0 else { throw TestFailure("cannot start \(command[0]): \(String(cString: strerror(result)))") }
        return pid
    }

    /// Polls for the child's end; SIGKILL (by pid) and reap it once `limit` has passed.
    private static func waitForExit(_ pid: pid_t, within limit: Duration, timeoutMessage: () -> String) async throws -> ExitStatus {
        let deadline = ContinuousClock.now + limit
        var pollInterval = Duration.milliseconds(1)
        while true {
            if let status = try reap(pid) { return status }
            if ContinuousClock.now >= deadline { break }
            do {
                try await Task.sleep(for: pollInterval)
            } catch {
                // Cancelled (the test's time limit): the child must not outlive the test.
                await killAndReap(pid)
                throw error
            }
            pollInterval = min(pollInterval * 2, .milliseconds(20))
        }
        await killAndReap(pid)
        throw TestFailure(timeoutMessage())
    }

    private static func reap(_ pid: pid_t) throws -> ExitStatus? {
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == 0 { return nil }
        if result == -1 && errno == EINTR { return nil }
        guard result == pid else { throw TestFailure("waitpid(\(pid)) failed: \(String(cString: strerror(errno)))") }
        let signal = status & 0x7F
        return signal == 0 ? .exited((status >> 8) & 0xFF) : .killed(signal: signal)
    }

    private static func killAndReap(_ pid: pid_t) async {
        kill(pid, SIGKILL)
        // A killed process ends at once; the bound only keeps a broken waitpid from spinning forever.
        for _ in 0..<1000 {
            if (try? reap(pid)) != nil { return }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}

/// A client program the tests need, found on PATH. Missing, the test fails (it does not skip)
/// and says what to install: CI installs them all with .ci/http-clients-setup.sh.
struct ClientTool: Sendable {
    let name: String
    let install: String

    static let curl = ClientTool(name: "curl", install: "apt-get install -y curl")
    static let wrk = ClientTool(name: "wrk", install: "apt-get install -y wrk")
    static let h2load = ClientTool(name: "h2load", install: "apt-get install -y nghttp2-client")
    static let python3 = ClientTool(name: "python3", install: "apt-get install -y python3")

    func executable() throws -> String {
        let path = getenv("PATH").map { String(cString: $0) } ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = "\(directory)/\(name)"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        throw TestFailure("\(name) is not installed (not on PATH): install it with `\(install)`, or run .ci/http-clients-setup.sh")
    }

    /// Fails unless python3 can import `module`, saying how to install it.
    static func requirePythonModule(_ module: String, install: String) async throws {
        let check = try await ClientRun.run(.python3, ["-c", "import \(module)"], within: .seconds(20))
        guard check.succeeded else {
            throw TestFailure("the Python module \(module) is missing: install it with `\(install)`, or run .ci/http-clients-setup.sh\n\(check)")
        }
    }
}

/// A file under /tmp that lives as long as the value.
final class TemporaryFile {
    let path: String

    init(contents: [UInt8] = []) throws {
        var template = Array("/tmp/iopool-http-client-XXXXXX".utf8CString)
        let fd = mkstemp(&template)
        guard fd >= 0 else { throw TestFailure("mkstemp failed: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        path = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var written = 0
        while written < contents.count {
            let count = contents.withUnsafeBytes { write(fd, $0.baseAddress! + written, $0.count - written) }
            guard count > 0 else { throw TestFailure("cannot write \(path): \(String(cString: strerror(errno)))") }
            written += count
        }
    }

    deinit { unlink(path) }

    func contents() throws -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TestFailure("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var result: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count == -1 && errno == EINTR { continue }
            guard count >= 0 else { throw TestFailure("cannot read \(path): \(String(cString: strerror(errno)))") }
            if count == 0 { return result }
            result += buffer[..<count]
        }
    }
}
