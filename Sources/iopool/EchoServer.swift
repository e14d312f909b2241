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
            the rest and exits; a second SIGINT or SIGTERM cancels them at once.
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

    // Numeric options parse unconditionally so that "-1" reaches validate() (see OptionRules).
    @Option(parsing: .unconditional, help: "Port to bind; 0 picks a free one.")
    var port: Int = 7000

    @Option(parsing: .unconditional, help: "Pool threads (default: the CPUs this process may use; --pool global ignores it).")
    var threads: Int = IOThreadPool.Configuration.defaultThreadCount

    @Option(help: "Scheduler: \(Pool.allCases.map(\.rawValue).joined(separator: ", ")).")
    var pool: Pool = .io

    @Option(parsing: .unconditional, help: "Seconds to let open connections finish after SIGINT/SIGTERM before cancelling them.")
    var gracePeriod: Double = 5

    func validate() throws {
        try OptionRules.checkPort(port, "--port", allowingZero: true)
        try OptionRules.checkCount(threads, "--threads")
        try OptionRules.checkSeconds(gracePeriod, "--grace-period", allowingZero: true)
    }

    func run() async throws {
        let address = try SocketAddress(host: host, port: UInt16(port))
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

        // The first signal starts a graceful shutdown; the grace period passing or a second signal
        // cancels the connections still open.
        let signal = await signals.next() ?? "a signal"
        printError("echo-server: \(signal), shutting down (a second SIGINT or SIGTERM cancels open connections at once)")
        listener.close()
        let ending = await withTaskGroup(of: ShutdownEnding?.self) { group in
            group.addTask {
                await pool.shutdownGracefully()
                return .drained
            }
            group.addTask {
                do {
                    try await Task.sleep(for: .seconds(gracePeriod))
                    return .gracePeriodPassed
                } catch {
                    return nil  // cancelled: the shutdown ended first
                }
            }
            group.addTask { await signals.next().map(ShutdownEnding.signalledAgain) }
            // Nothing is cancelled before the first ending, so it is not nil.
            let first = await group.next()!!
            if first != .drained {
                await pool.shutdown()  // cancels what is left; the graceful shutdown completes with it
            }
            group.cancelAll()
            return first
        }
        switch ending {
        case .drained: break
        case .gracePeriodPassed: printError("echo-server: cancelled the connections still open after \(gracePeriod) s")
        case .signalledAgain(let signal): printError("echo-server: \(signal) again, cancelled the connections still open")
        }
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

/// What ended the wait after the first shutdown signal.
enum ShutdownEnding: Equatable, Sendable {
    /// Every connection finished within the grace period.
    case drained
    case gracePeriodPassed
    case signalledAgain(String)
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

/// SIGINT/SIGTERM as awaitable events, with the self-pipe trick: the signal handler only
/// `write`s the signal number to a pipe (async-signal-safe); a Dispatch thread reads it, for as
/// long as the process lives, so that every signal is seen (the server escalates on the second).
/// The library itself installs no signal handlers; a CLI may.
final class ShutdownSignals: @unchecked Sendable {  // every `var` is guarded by `queue`
    private let queue = DispatchQueue(label: "iopool.signals")
    /// Signals received and not yet taken by `next()`, oldest first.
    private var pending: [String] = []
    private var receivedAny = false
    private var waiters: [(id: UInt64, continuation: CheckedContinuation<String?, Never>)] = []
    /// Waits cancelled before they were queued (their `next()` then returns nil at once).
    private var cancelledWaits: Set<UInt64> = []
    private var nextWaitID: UInt64 = 0

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
            while true {
                guard read(readFD, &byte, 1) == 1 else { continue }  // EINTR: read again
                let name = CInt(byte) == SIGINT ? "SIGINT" : "SIGTERM"
                queue.async { self.deliver(name) }
            }
        }
    }

    /// Whether any signal has arrived.
    var received: Bool { queue.sync { receivedAny } }

    /// The next signal not yet taken (in arrival order), waiting for it; nil if the task is
    /// cancelled first.
    func next() async -> String? {
        let id = queue.sync {
            defer { nextWaitID += 1 }
            return nextWaitID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<String?, Never>) in
                queue.async {
                    if self.cancelledWaits.remove(id) != nil {
                        continuation.resume(returning: nil)
                    } else if !self.pending.isEmpty {
                        continuation.resume(returning: self.pending.removeFirst())
                    } else {
                        self.waiters.append((id, continuation))
                    }
                }
            }
        } onCancel: {
            queue.async {
                if let index = self.waiters.firstIndex(where: { $0.id == id }) {
                    self.waiters.remove(at: index).continuation.resume(returning: nil)
                } else {
                    self.cancelledWaits.insert(id)  // not queued yet, or already resumed (then unused)
                }
            }
        }
    }

    private func deliver(_ name: String) {
        receivedAny = true
        if waiters.isEmpty {
            pending.append(name)
        } else {
            waiters.removeFirst().continuation.resume(returning: name)
        }
    }
}

/// The pipe the signal handler writes to (a C global: a signal handler cannot capture context).
nonisolated(unsafe) private var signalPipeWriteFD: CInt = -1
