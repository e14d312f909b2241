import Foundation
import Glibc
import IOPool

/// A process the bench starts (an echo server, the C load client), optionally pinned to CPUs,
/// with its stdout and stderr in files. It starts with an empty signal mask and default
/// dispositions for the signals the bench sends or a child expects: the spawning thread's mask
/// is inherited, and the runtime's threads block signals, so without this a server would never
/// see the SIGTERM that stops it.
final class ChildProcess {
    let pid: pid_t

    init(arguments: [String], environment: [String], cpus: [Int]?, stdoutPath: String, stderrPath: String) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        if stderrPath == stdoutPath {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        } else {
            posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        }
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in Signals.defaultInChildProcesses { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid = pid_t()
        // The child inherits the spawning thread's CPU mask.
        let status = try CPUAffinity.withCurrentThread(pinnedTo: cpus) {
            posix_spawn(&pid, arguments[0], &actions, &attributes, argv, envp)
        }
        guard status == 0 else {
            throw BenchError("cannot start '\(arguments.joined(separator: " "))': \(String(cString: strerror(status)))")
        }
        self.pid = pid
    }

    /// This process's environment, less the variables named in `removing`.
    static func inheritedEnvironment(removing names: Set<String> = []) -> [String] {
        var variables: [String] = []
        var entry = environ
        while let pointer = entry.pointee {
            let variable = String(cString: pointer)
            if !names.contains(String(variable.prefix { $0 != "=" })) { variables.append(variable) }
            entry += 1
        }
        return variables
    }

    /// How the process ended ("exit status N", "signal N"), or nil while it runs; collects it the
    /// first time.
    func reap() -> String? {
        if let ending { return ending }
        var status: CInt = 0
        var usage = rusage()
        guard wait4(pid, &status, WNOHANG, &usage) == pid else { return nil }
        record(status: status, usage: usage)
        return ending
    }

    private func record(status: CInt, usage: rusage) {
        cpuSeconds = Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
        let signal = status & 0x7f
        if signal == 0 { exitCode = (status >> 8) & 0xff }
        ending = signal == 0 ? "exit status \((status >> 8) & 0xff)" : "signal \(signal)"
    }
    private var ending: String?
    /// The CPU time (user and system) the process and the children it waited for used, once
    /// reaped: how busy a load client was (wrk), without sampling it while it runs.
    private(set) var cpuSeconds: Double?
    /// The exit status, once reaped, if the process exited (rather than died of a signal).
    private(set) var exitCode: CInt?

    /// Waits for the process to end by itself, SIGKILL after `seconds`. Returns how it ended.
    func wait(atMost seconds: Double) async -> String {
        if let ending = await reap(within: seconds) { return ending }
        return await killAndReap() + " (killed: still running after \(format1(seconds)) s)"
    }

    /// SIGTERM, then SIGKILL if it has not exited after `grace` seconds. Returns how it ended.
    func stop(grace: Double) async -> String {
        if let ending = reap() { return ending }
        kill(pid, SIGTERM)
        if let ending = await reap(within: grace) { return ending }
        return await killAndReap() + " (killed after ignoring SIGTERM for \(format1(grace)) s)"
    }

    private func reap(within seconds: Double) async -> String? {
        let deadline = IOClock.Instant.now.advanced(by: .seconds(seconds))
        while IOClock.Instant.now < deadline {
            if let ending = reap() { return ending }
            try? await sleep(for: .milliseconds(20))
        }
        return reap()
    }

    /// SIGKILL, and collect the process at once: for error paths that cannot await (a `defer`).
    /// A child that is killed but never waited for stays a zombie for the bench's whole life, and a
    /// process that starts children must collect every one: Swift Testing's exit-test monitor, for
    /// one, peeks at every child with `waitid(P_ALL, WNOWAIT)` in a loop and spins on a zombie it
    /// does not own, which kept a test process from ever exiting.
    func killAndReapNow() {
        guard reap() == nil else { return }
        kill(pid, SIGKILL)
        var status: CInt = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) == -1, errno == EINTR {}
        record(status: status, usage: usage)
    }

    private func killAndReap() async -> String {
        kill(pid, SIGKILL)
        while true {
            if let ending = reap() { return ending }
            try? await sleep(for: .milliseconds(10))
        }
    }
}

/// The last lines of a child's output file, for error messages.
func fileTail(_ path: String, lines: Int = 20) -> String {
    guard let output = try? String(contentsOfFile: path, encoding: .utf8) else { return "(no output)" }
    return output.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines + 1).joined(separator: "\n")
}
