import Foundation
import Glibc
import IOPool

/// A server under test, run as a child process: `/bin/sh -c "exec COMMAND"` (so the child *is* the
/// server, and its CPU clock is the server's), optionally pinned to CPUs, its stdout and stderr in a
/// log file. `iopool bench echo`'s load client reads its CPU clock around each measured window.
final class ServerProcess {
    let name: String
    let command: String
    let port: UInt16
    let logPath: String
    private let child: ChildProcess
    var pid: pid_t { child.pid }

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
        do {
            child = try ChildProcess(
                arguments: ["/bin/sh", "-c", "exec " + command],
                environment: ChildProcess.inheritedEnvironment(removing: ["PORT"]) + ["PORT=\(port)"], cpus: cpus,
                stdoutPath: logPath, stderrPath: logPath)
        } catch {
            throw BenchError("\(name): \(error)")
        }
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
            if let status = child.reap() {
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

    /// Whether the server is still running (a crash during a round makes the round fail).
    var isRunning: Bool { child.reap() == nil }

    /// SIGTERM, then SIGKILL if it has not exited after 10 s. Returns how it ended.
    @discardableResult
    func stop() async -> String { await child.stop(grace: 10) }

    /// SIGKILL and collect it now (see `ChildProcess.killAndReapNow`).
    func killNow() { child.killAndReapNow() }

    /// The last lines of the server's output, for error messages.
    func logTail() -> String { fileTail(logPath) }
}
