import Glibc
import IOPool

/// A child process for the tests that run the built `iopool` (`AcceptOutOfDescriptorsTests`,
/// `CLISignalTests`): started with `posix_spawn`, stdin from /dev/null, stderr (and stdout, unless
/// the test passes a descriptor for it) into a temporary file that `output` reads. Ended only
/// through its pid, never by name.
final class ChildProcess: @unchecked Sendable {
    // Thread-safety: `pid` and `outputPath` are immutable; `ended` is touched only by the test's
    // own task, sequentially.
    let pid: pid_t
    let outputPath: String
    /// The executable's file name, for messages.
    let name: String
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

    /// - Parameters:
    ///   - descriptorLimit: runs the child under `/bin/sh -c 'ulimit -n N && exec …'`, so that only
    ///     the child, not the test process, has so few descriptors.
    ///   - stdout: a descriptor for the child's stdout, instead of the output file.
    ///   - signalsAtDefaults: SIGINT, SIGTERM and SIGPIPE at their defaults and no signal blocked in
    ///     the child (as from a shell), whatever the test process ignores or blocks: for tests of how
    ///     the program ends on signals.
    init(
        executable: String, arguments: [String], descriptorLimit: Int? = nil, stdout: CInt? = nil,
        signalsAtDefaults: Bool = false
    ) throws {
        name = String(executable.split(separator: "/").last ?? Substring(executable))
        var template = Array("/tmp/iopool-child-XXXXXX".utf8CString)
        let outputFD = mkstemp(&template)
        guard outputFD >= 0 else { throw TestFailure("mkstemp failed: errno \(errno)") }
        close(outputFD)
        outputPath = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, outputPath, O_WRONLY | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, stdout ?? 2, 1)
        // Descriptors the test process leaks without O_CLOEXEC would take some of a limited child's
        // slots; the library and the runtime open theirs close-on-exec.

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        if signalsAtDefaults {
            var noSignals = sigset_t()
            sigemptyset(&noSignals)
            posix_spawnattr_setsigmask(&attributes, &noSignals)
            var defaults = sigset_t()
            sigemptyset(&defaults)
            for signal in [SIGINT, SIGTERM, SIGPIPE] { sigaddset(&defaults, signal) }
            posix_spawnattr_setsigdefault(&attributes, &defaults)
            posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        }

        var argv = [executable] + arguments
        if let descriptorLimit {
            // "$0" is the executable, "$@" its arguments: nothing is interpolated into the script.
            argv = ["/bin/sh", "-c", "ulimit -n \(descriptorLimit) && exec \"$0\" \"$@\""] + argv
        }
        var cArguments = argv.map { strdup($0) }
        cArguments.append(nil)
        defer { for argument in cArguments { free(argument) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, argv[0], &actions, &attributes, cArguments, environ)
        guard result == 0 else { throw TestFailure("posix_spawn \(argv[0]) failed: errno \(result)") }
        pid = child
    }

    /// The built `iopool` with `arguments`.
    convenience init(iopool arguments: [String], descriptorLimit: Int? = nil, stdout: CInt? = nil, signalsAtDefaults: Bool = false) throws {
        try self.init(
            executable: try iopoolExecutable(), arguments: arguments, descriptorLimit: descriptorLimit, stdout: stdout,
            signalsAtDefaults: signalsAtDefaults)
    }

    deinit {
        unlink(outputPath)
    }

    /// stderr (and stdout, unless redirected) so far.
    var output: String {
        (try? readText(outputPath)) ?? ""
    }

    /// The address in the first "listening on HOST:PORT" line of the output.
    func listeningAddress(within limit: Duration) async throws -> SocketAddress {
        try await waitForOutput("listening on ", within: limit)
        let line = output.split(separator: "\n").first { $0.hasPrefix("listening on ") }!
        return try SocketAddress(String(line.dropFirst("listening on ".count)))
    }

    /// Polls the output until it contains `text`; throws if the process exits or `limit` passes first.
    func waitForOutput(_ text: String, within limit: Duration) async throws {
        let deadline = ContinuousClock.now + limit
        while !output.contains(text) {
            if let status = try exitStatusNow() { throw TestFailure("\(name) ended (\(status)) before printing '\(text)':\n\(output)") }
            guard ContinuousClock.now < deadline else { throw TestFailure("\(name) did not print '\(text)' within \(limit):\n\(output)") }
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
        throw TestFailure("\(name) still runs \(limit) later:\n\(output)")
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

/// The `iopool` executable built beside the running test bundle (`/proc/self/exe`'s directory):
/// the one `swift build --build-tests` (and so `swift test`) links; under `--sanitize=thread` the
/// TSan build.
func iopoolExecutable() throws -> String {
    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
    let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
    guard length > 0 else { throw TestFailure("readlink(/proc/self/exe) failed: errno \(errno)") }
    let selfPath = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    let directory = selfPath[..<(selfPath.lastIndex(of: "/") ?? selfPath.startIndex)]
    let path = "\(directory)/iopool"
    guard access(path, X_OK) == 0 else {
        throw TestFailure("no iopool executable at \(path): build it with `swift build --build-tests` (swift test does)")
    }
    return path
}

/// The whole file at `path`.
func readText(_ path: String) throws -> String {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { throw TestFailure("cannot open \(path): errno \(errno)") }
    defer { close(fd) }
    var result: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count <= 0 { break }
        result += buffer[..<count]
    }
    return String(decoding: result, as: UTF8.self)
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
