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
    /// environment), then waits until the server listens on that port. The port was free a moment
    /// before the server binds it: if another process listens there by then, the server starts
    /// again on another port (three tries).
    static func start(name: String, command template: String, cpus: [Int]?, logPath: String) async throws -> ServerProcess {
        var tries = 1
        while true {
            do {
                return try await start(name: name, command: template, port: try freeLoopbackPort(), cpus: cpus, logPath: logPath)
            } catch let error as PortTaken where tries < 3 {
                printError("\(error.description.prefix { $0 != ";" }); starting it again on another port")
                tries += 1
            }
        }
    }

    /// Starts `command` on `port` and waits until the server, the child process or one of its
    /// descendants, holds a socket listening on it (a successful connect would not tell whose it
    /// is). Throws `PortTaken` as soon as another process listens on `port`, and a `BenchError`
    /// if the server exits first or is not listening after `timeout`.
    static func start(
        name: String, command template: String, port: UInt16, cpus: [Int]?, logPath: String, timeout: Duration = .seconds(30)
    ) async throws -> ServerProcess {
        let command = template.replacingOccurrences(of: "{port}", with: String(port))
        let process = try ServerProcess(name: name, command: command, port: port, cpus: cpus, logPath: logPath)
        do {
            try await process.waitUntilListening(timeout: timeout)
        } catch {
            await process.stop()
            throw error
        }
        return process
    }

    /// Another process listens on the port the server was given: the server's bind fails, or,
    /// with SO_REUSEPORT, the two share the connections.
    struct PortTaken: Error, CustomStringConvertible {
        let description: String
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

    private func waitUntilListening(timeout: Duration) async throws {
        let deadline = IOClock.Instant.now.advanced(by: timeout)
        while true {
            let holders = ListeningSockets.holders(of: port, tree: child.pid)
            if holders.others > 0 {
                throw PortTaken(description: "\(name): another process listens on port \(port) too; its output (\(logPath)):\n\(logTail())")
            }
            if let status = child.reap() {
                throw BenchError("\(name): the server exited (\(status)) before accepting connections; its output (\(logPath)):\n\(logTail())")
            }
            if holders.tree > 0 { return }
            if IOClock.Instant.now >= deadline {
                throw BenchError("\(name): nothing listens on 127.0.0.1:\(port) after \(timeout.components.seconds) s; its output (\(logPath)):\n\(logTail())")
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
