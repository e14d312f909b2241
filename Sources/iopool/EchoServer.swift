import ArgumentParser
import Dispatch
import Glibc
import IOPool
import Synchronization

/// The echo example of tokio-io-pool, written with the public API: an accept loop whose
/// connections are spawned round-robin onto the pool, each copying its read side to its write side.
struct EchoServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "echo-server",
        abstract: "Serve TCP echo: every byte a client sends comes back; half-close is honoured.",
        discussion: """
            Prints "listening on HOST:PORT" on stdout once it accepts. On SIGINT or SIGTERM it stops \
            accepting, lets open connections finish for up to --grace-period seconds, then cancels \
            the rest and exits.
            """)

    enum Pool: String, ExpressibleByArgument, CaseIterable {
        /// IOThreadPool: a thread per core, each with its own event loop.
        case io
        /// WorkStealingPool: workers with local queues, stealing, one shared I/O driver.
        case stealing
        /// Swift's default global executor, with the same net types: the baseline a Swift user has
        /// today. Sockets wait on the default IOThreadPool's loops, so every wait hops there and back.
        case global
    }

    @Option(help: "Address to bind (a numeric IPv4 or IPv6 address).")
    var host = "127.0.0.1"

    @Option(help: "Port to bind; 0 picks a free one.")
    var port: UInt16 = 7000

    @Option(help: "Pool threads (default: the CPUs this process may use; --pool global ignores it).")
    var threads: Int = IOThreadPool.Configuration.defaultThreadCount

    @Option(help: "Scheduler: \(Pool.allCases.map(\.rawValue).joined(separator: ", ")).")
    var pool: Pool = .io

    @Option(help: "Seconds to let open connections finish after SIGINT/SIGTERM before cancelling them.")
    var gracePeriod: Double = 5

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard gracePeriod >= 0 else { throw ValidationError("--grace-period must not be negative") }
    }

    func run() async throws {
        let address = try SocketAddress(host: host, port: port)
        let pool: ServerPool
        switch self.pool {
        case .io: pool = .io(try IOThreadPool(configuration: .init(threadCount: threads, threadNamePrefix: "echo-")))
        case .stealing: pool = .stealing(try WorkStealingPool(configuration: .init(threadCount: threads, threadNamePrefix: "echo-ws-")))
        case .global: pool = .global(GlobalTasks())
        }
        let listener = try TCPListener.bind(address)
        let signals = ShutdownSignals()

        try pool.spawn {
            do {
                // Each connection is a task of its own (on IOThreadPool: round-robin over the threads).
                for try await connection in listener.connections {
                    try pool.spawn { await Self.echo(connection) }
                }
            } catch {
                // The listener was closed by the shutdown below; anything else is worth a line.
                if !signals.received { printError("echo-server: accept loop ended: \(error)") }
            }
        }
        printLine("listening on \(try listener.localAddress)")

        let signal = await signals.next()
        printError("echo-server: \(signal), shutting down")
        listener.close()
        let finished = await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                await pool.shutdownGracefully()
                return true
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(gracePeriod))
                return false
            }
            let first = await group.next()!
            if !first {
                await pool.shutdown()  // cancels what is left; the graceful shutdown completes with it
            }
            group.cancelAll()
            return first
        }
        if !finished { printError("echo-server: cancelled the connections still open after \(gracePeriod) s") }
        printError("echo-server: stopped; accept back-offs (out of descriptors or memory): \(listener.acceptBackoffCount)")
    }

    /// Copies until the client half-closes (EOF), then half-closes back and closes.
    /// A client that resets the connection ends it early; that is not the server's error.
    static func echo(_ connection: TCPStream) async {
        defer { connection.close() }
        do {
            _ = try await copy(from: connection, to: connection)
            try connection.shutdown(.write)
        } catch {
            // ECONNRESET, EPIPE, cancellation at shutdown: nothing to report to anyone.
        }
    }
}

/// The pool the server runs on: the same echo code on any scheduler.
enum ServerPool: Sendable {
    case io(IOThreadPool)
    case stealing(WorkStealingPool)
    case global(GlobalTasks)

    func spawn(_ operation: sending @escaping () async -> Void) throws {
        switch self {
        case .io(let pool): try pool.spawn(operation)
        case .stealing(let pool): try pool.spawn(operation)
        case .global(let tasks): tasks.spawn(operation)
        }
    }

    func shutdownGracefully() async {
        switch self {
        case .io(let pool): await pool.shutdownGracefully()
        case .stealing(let pool): await pool.shutdownGracefully()
        case .global(let tasks): await tasks.waitForAll()
        }
    }

    func shutdown() async {
        switch self {
        case .io(let pool): await pool.shutdown()
        case .stealing(let pool): await pool.shutdown()
        case .global(let tasks):
            tasks.cancelAll()
            await tasks.waitForAll()
        }
    }
}

/// Plain `Task`s on Swift's global executor, remembered while they run so that a shutdown can
/// wait for them or cancel them (what the pools' task accounting does for theirs).
final class GlobalTasks: Sendable {
    private struct State {
        var nextID: UInt64 = 0
        var running: [UInt64: Task<Void, Never>] = [:]
        /// Tasks that finished before `spawn` had recorded them.
        var finishedEarly: Set<UInt64> = []
    }
    private let state = Mutex(State())

    func spawn(_ operation: sending @escaping () async -> Void) {
        let id = state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
        let task = Task {
            await operation()
            self.finished(id)
        }
        state.withLock { state in
            if state.finishedEarly.remove(id) == nil { state.running[id] = task }
        }
    }

    private func finished(_ id: UInt64) {
        state.withLock { state in
            if state.running.removeValue(forKey: id) == nil { state.finishedEarly.insert(id) }
        }
    }

    func cancelAll() {
        for task in state.withLock({ Array($0.running.values) }) { task.cancel() }
    }

    /// Returns once every task spawned so far, and every task they spawned, has finished.
    func waitForAll() async {
        while true {
            let running = state.withLock { Array($0.running.values) }
            if running.isEmpty { return }
            for task in running { await task.value }
        }
    }
}

/// SIGINT/SIGTERM as an awaitable event, with the self-pipe trick: the signal handler only
/// `write`s the signal number to a pipe (async-signal-safe); a Dispatch thread blocks reading it.
/// The library itself installs no signal handlers; a CLI may.
final class ShutdownSignals: @unchecked Sendable {  // `delivered` and `waiters` are guarded by `queue`
    private let queue = DispatchQueue(label: "iopool.signals")
    private var delivered: String?
    private var waiters: [CheckedContinuation<String, Never>] = []

    init() {
        var fds: [CInt] = [0, 0]
        guard pipe(&fds) == 0 else { fatalError("pipe() for signal handling failed: errno \(errno)") }
        signalPipeWriteFD = fds[1]
        let readFD = fds[0]
        for number in [SIGINT, SIGTERM] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(signalPipeWriteFD, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            sigaction(number, &action, nil)
        }
        DispatchQueue(label: "iopool.signals.reader").async { [self] in
            var byte: UInt8 = 0
            while read(readFD, &byte, 1) != 1 {}
            let name = CInt(byte) == SIGINT ? "SIGINT" : "SIGTERM"
            queue.async { self.deliver(name) }
        }
    }

    var received: Bool { queue.sync { delivered != nil } }

    func next() async -> String {
        await withCheckedContinuation { continuation in
            queue.async {
                if let delivered = self.delivered {
                    continuation.resume(returning: delivered)
                } else {
                    self.waiters.append(continuation)
                }
            }
        }
    }

    private func deliver(_ name: String) {
        guard delivered == nil else { return }
        delivered = name
        for waiter in waiters { waiter.resume(returning: name) }
        waiters = []
    }
}

/// The pipe the signal handler writes to (a C global: a signal handler cannot capture context).
nonisolated(unsafe) private var signalPipeWriteFD: CInt = -1
