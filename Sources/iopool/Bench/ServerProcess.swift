import Foundation
import Glibc
import IOPool

/// A server under test, run as a child process: `/bin/sh -c "exec COMMAND"` (so the child *is* the
/// server, and its CPU clock is the server's), optionally pinned to CPUs, its stdout and stderr in a
/// log file. `iopool bench echo` reads its CPU time around each measured window.
final class ServerProcess {
    let name: String
    let command: String
    let port: UInt16
    let logPath: String
    let pid: pid_t

    /// Starts `command` with `{port}` replaced by a free loopback port (and `PORT` set in its
    /// environment), then waits until that port accepts connections.
    static func start(name: String, command template: String, cpus: [Int]?, logPath: String) async throws -> ServerProcess {
        let port = try freeLoopbackPort()
        let command = template.replacingOccurrences(of: "{port}", with: String(port))
        let process = try ServerProcess(name: name, command: command, port: port, cpus: cpus, logPath: logPath)
        do {
            try await process.waitUntilAccepting()
        } catch {
            await process.stop()
            throw error
        }
        return process
    }

    private init(name: String, command: String, port: UInt16, cpus: [Int]?, logPath: String) throws {
        self.name = name
        self.command = command
        self.port = port
        self.logPath = logPath
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let shellArguments: [String] = ["/bin/sh", "-c", "exec " + command]
        let arguments: [UnsafeMutablePointer<CChar>?] = shellArguments.map { strdup($0) } + [nil]
        let environment: [UnsafeMutablePointer<CChar>?] = Self.environment(port: port).map { strdup($0) } + [nil]
        defer {
            for pointer in arguments { free(pointer) }
            for pointer in environment { free(pointer) }
        }
        // The spawning thread's signal mask is inherited, and the runtime's threads block signals:
        // without resetting it, the server would never see the SIGTERM that stops it.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGPIPE, SIGHUP, SIGALRM] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid = pid_t()
        let status = try CPUAffinity.withCurrentThread(pinnedTo: cpus) {
            posix_spawn(&pid, "/bin/sh", &actions, &attributes, arguments, environment)
        }
        guard status == 0 else {
            throw BenchError("\(name): cannot start '\(command)': \(String(cString: strerror(status)))")
        }
        self.pid = pid
    }

    private static func environment(port: UInt16) -> [String] {
        var variables: [String] = []
        var entry = environ
        while let pointer = entry.pointee {
            let variable = String(cString: pointer)
            if !variable.hasPrefix("PORT=") { variables.append(variable) }
            entry += 1
        }
        return variables + ["PORT=\(port)"]
    }

    /// A port that was free a moment ago (bound to port 0 and closed again).
    private static func freeLoopbackPort() throws -> UInt16 {
        let listener = try TCPListener.bind(try SocketAddress(host: "127.0.0.1", port: 0))
        defer { listener.close() }
        return try listener.localAddress.port
    }

    private func waitUntilAccepting() async throws {
        let address = try SocketAddress(host: "127.0.0.1", port: port)
        let deadline = IOClock.Instant.now.advanced(by: .seconds(30))
        while true {
            if let status = reap() {
                throw BenchError("\(name): the server exited (\(status)) before accepting connections; its output (\(logPath)):\n\(logTail())")
            }
            if let stream = try? await TCPStream.connect(to: address) {
                stream.close()
                return
            }
            if IOClock.Instant.now >= deadline {
                throw BenchError("\(name): nothing accepts on 127.0.0.1:\(port) after 30 s; its output (\(logPath)):\n\(logTail())")
            }
            try await sleep(for: .milliseconds(50))
        }
    }

    /// CPU time the server has used so far, all its threads (including exited ones) together.
    func cpuNanoseconds() throws -> UInt64 {
        var clock = clockid_t()
        let status = clock_getcpuclockid(pid, &clock)
        guard status == 0 else { throw BenchError("\(name): cannot read its CPU clock: \(String(cString: strerror(status)))") }
        var time = timespec()
        guard clock_gettime(clock, &time) == 0 else {
            throw BenchError("\(name): cannot read its CPU clock: \(String(cString: strerror(errno)))")
        }
        return UInt64(time.tv_sec) * 1_000_000_000 + UInt64(time.tv_nsec)
    }

    /// Whether the server is still running (a crash during a round makes the round fail).
    var isRunning: Bool { reap() == nil }

    /// SIGTERM, then SIGKILL if it has not exited after 10 s. Returns how it ended.
    @discardableResult
    func stop() async -> String {
        if let status = reap() { return status }
        kill(pid, SIGTERM)
        for _ in 0..<200 {
            if let status = reap() { return status }
            try? await sleep(for: .milliseconds(50))
        }
        kill(pid, SIGKILL)
        while true {
            if let status = reap() { return status + " (killed after ignoring SIGTERM for 10 s)" }
            try? await sleep(for: .milliseconds(10))
        }
    }

    /// How the process ended, or nil while it runs; collects it the first time.
    private var exitDescription: String?
    private func reap() -> String? {
        if let exitDescription { return exitDescription }
        var status: CInt = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        let signal = status & 0x7f
        exitDescription = signal == 0 ? "exit status \((status >> 8) & 0xff)" : "signal \(signal)"
        return exitDescription
    }

    /// The last lines of the server's output, for error messages.
    func logTail(lines: Int = 20) -> String {
        guard let output = try? String(contentsOfFile: logPath, encoding: .utf8) else { return "(no output)" }
        return output.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines + 1).joined(separator: "\n")
    }
}
