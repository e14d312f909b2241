import Glibc
import IOPool
import Testing

/// EMFILE on accept (issue 4, "the hard edges"): the built `iopool echo-server` runs in a
/// subprocess under `ulimit -n 64`; the test opens more connections than that allows and shows
/// that the listener backs off instead of failing or spinning a core, serves again once the
/// connections close, and counts its back-offs (printed at SIGTERM).
///
/// A subprocess, because lowering RLIMIT_NOFILE in the test process would starve every other
/// test running beside it. The binary is the `iopool` that `swift build --build-tests` (and so
/// `swift test`) links next to the test bundle; under `--sanitize=thread` it is the TSan build.
/// `.ci/emfile-smoke.sh` keeps doing the same on the release binary in CI.
@Suite(.timeLimit(.minutes(2)))
struct AcceptOutOfDescriptorsTests {
    /// The server's descriptor limit, and how many connections the test holds open (well over it).
    static let descriptorLimit = 64
    static let heldConnections = 120
    /// CPU the server may use while out of descriptors, over `idleWindow`: a spinning accept loop
    /// uses all of it (one core), a backing-off one ~0.1% (a retry every 100 ms).
    static let idleWindow: Duration = .seconds(2)
    static let cpuAllowance = 0.3

    @Test(arguments: ["io", "stealing"])
    func listenerBacksOffWithoutSpinningAndServesAgain(pool: String) async throws {
        let server = try ServerProcess(
            executable: try iopoolExecutable(), descriptorLimit: Self.descriptorLimit,
            arguments: ["echo-server", "--host", "127.0.0.1", "--port", "0", "--threads", "1", "--grace-period", "1", "--pool", pool])
        defer { server.killIfRunning() }
        let address = try await server.listeningAddress(within: .seconds(60))
        try await expectEcho(address, "before")

        var held: [TCPStream] = []
        defer { for stream in held { stream.close() } }
        for _ in 0..<Self.heldConnections { held.append(try await TCPStream.connect(to: address)) }
        // Out of descriptors: every slot under the limit is taken (a few margin for what the
        // runtime opens lazily). Waits until the server has accepted that many.
        let open = try await server.openDescriptors(atLeast: Self.descriptorLimit - 4, within: .seconds(30))
        #expect(open >= Self.descriptorLimit - 4, "the server holds \(open) descriptors; it never ran out")

        let before = try server.cpuSeconds()
        try await Task.sleep(for: Self.idleWindow)
        let spent = try server.cpuSeconds() - before
        #expect(spent < Self.cpuAllowance, "the server used \(spent) s of CPU in \(Self.idleWindow) while out of descriptors: it spins")

        for stream in held { stream.close() }
        held = []
        try await expectEcho(address, "served again after descriptors were freed")

        let (status, output) = try await server.terminate(within: .seconds(60))
        #expect(status == 0, "echo-server exited with status \(status) after SIGTERM:\n\(output)")
        let backoffs = backoffCount(in: output)
        print("EMFILE (--pool \(pool)): \(open) descriptors open, \(spent) s CPU over \(Self.idleWindow) out of descriptors, \(backoffs.map(String.init) ?? "no") accept back-offs")
        #expect((backoffs ?? 0) > 0, "accept back-offs: \(backoffs.map(String.init) ?? "not reported"); output:\n\(output)")
    }
}

// MARK: - Helpers

/// The `iopool` executable built beside the running test bundle (`/proc/self/exe`'s directory).
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

/// Connects, sends `text`, half-closes, and expects it back whole before EOF (within 30 s).
private func expectEcho(_ address: SocketAddress, _ text: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
    let echoed = try await withTimeout(.seconds(30)) { () async throws -> [UInt8] in
        let stream = try await TCPStream.connect(to: address)
        defer { stream.close() }
        try await stream.write(Array(text.utf8))
        try stream.shutdown(.write)
        var result: [UInt8] = []
        while true {
            let bytes = try await stream.read()
            if bytes.isEmpty { return result }
            result += bytes
        }
    }
    #expect(String(decoding: echoed, as: UTF8.self) == text, sourceLocation: sourceLocation)
}

/// N in "accept back-offs (out of descriptors or memory): N".
private func backoffCount(in output: String) -> Int? {
    let marker = "accept back-offs (out of descriptors or memory): "
    guard let range = output.range(of: marker) else { return nil }
    return Int(output[range.upperBound...].prefix { $0.isNumber })
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A child process started with `posix_spawn` under `/bin/sh -c 'ulimit -n N; exec …'`, its
/// stdout and stderr in a temporary file. Ended only through its pid.
private final class ServerProcess: @unchecked Sendable {
    // Thread-safety: `pid` and `outputPath` are immutable; `exited` is touched only by the test's
    // own task (sequentially), never concurrently.
    let pid: pid_t
    let outputPath: String
    private var exited = false

    init(executable: String, descriptorLimit: Int, arguments: [String]) throws {
        var template = Array("/tmp/iopool-emfile-XXXXXX".utf8CString)
        let outputFD = mkstemp(&template)
        guard outputFD >= 0 else { throw TestFailure("mkstemp failed: errno \(errno)") }
        close(outputFD)
        outputPath = String(decoding: template.dropLast().map { UInt8(bitPattern: $0) }, as: UTF8.self)

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Descriptors the test process leaks without O_CLOEXEC would take some of the child's 64
        // slots; the library and the runtime open theirs close-on-exec, and the check below counts
        // the child's open descriptors whatever they are.

        // "$0" is the executable, "$@" its arguments: nothing is interpolated into the script.
        let script = "ulimit -n \(descriptorLimit) && exec \"$0\" \"$@\""
        let argv = ["/bin/sh", "-c", script, executable] + arguments
        var cArguments = argv.map { strdup($0) }
        cArguments.append(nil)
        defer { for argument in cArguments { free(argument) } }
        var child: pid_t = 0
        let result = posix_spawn(&child, "/bin/sh", &actions, nil, cArguments, environ)
        guard result == 0 else { throw TestFailure("posix_spawn /bin/sh failed: errno \(result)") }
        pid = child
    }

    deinit {
        unlink(outputPath)
    }

    var output: String {
        (try? readText(outputPath)) ?? ""
    }

    /// Polls the output for "listening on HOST:PORT".
    func listeningAddress(within limit: Duration) async throws -> SocketAddress {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            let text = output
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }) {
                return try SocketAddress(String(line.dropFirst("listening on ".count)))
            }
            if try reap() != nil { throw TestFailure("echo-server exited before listening:\n\(text)") }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("echo-server did not print 'listening on' within \(limit):\n\(output)")
    }

    /// Waits until the process has at least `count` descriptors open (or the limit passes);
    /// returns the last count seen.
    func openDescriptors(atLeast count: Int, within limit: Duration) async throws -> Int {
        let deadline = ContinuousClock.now + limit
        var seen = 0
        while ContinuousClock.now < deadline {
            seen = descriptorCount()
            if seen >= count { return seen }
            try await Task.sleep(for: .milliseconds(50))
        }
        return seen
    }

    private func descriptorCount() -> Int {
        guard let directory = opendir("/proc/\(pid)/fd") else { return 0 }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            if entry.pointee.d_name.0 != 0x2E { count += 1 }  // not "." or ".."
        }
        return count
    }

    /// User plus system CPU time of the process so far (/proc/PID/stat fields 14 and 15).
    func cpuSeconds() throws -> Double {
        let stat = try readText("/proc/\(pid)/stat")
        guard let close = stat.lastIndex(of: ")") else { throw TestFailure("unexpected /proc/\(pid)/stat: \(stat)") }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else {
            throw TestFailure("unexpected /proc/\(pid)/stat: \(stat)")
        }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// Sends SIGTERM and waits for the exit; returns the exit status (128 + signal if killed) and
    /// the output.
    func terminate(within limit: Duration) async throws -> (status: Int32, output: String) {
        kill(pid, SIGTERM)
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if let status = try reap() { return (status, output) }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TestFailure("echo-server did not exit within \(limit) of SIGTERM:\n\(output)")
    }

    /// The exit status if the process has exited (reaping it), else nil.
    private func reap() throws -> Int32? {
        if exited { return nil }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        if result == 0 { return nil }
        guard result == pid else { throw TestFailure("waitpid(\(pid)) failed: errno \(errno)") }
        exited = true
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    /// Ends the process (SIGKILL, by pid) if the test left it running, and reaps it.
    func killIfRunning() {
        guard !exited else { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        _ = waitpid(pid, &status, 0)
        exited = true
    }
}

private func readText(_ path: String) throws -> String {
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
