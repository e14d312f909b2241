@_spi(IOPoolSupport) import IOPool
import Synchronization

/// What the server knows of one open connection, shared between the connection's task and the
/// server's sweeper and shutdown: the deadline of the wait in progress, and the stream, so that an
/// expired wait or a graceful shutdown can wake it.
///
/// Why not `withTimeout` around each read: that costs two child tasks per call, several
/// microseconds, on a request path whose whole budget is about ten. Here a wait costs two relaxed
/// atomic stores, and one sweeper per server looks at every deadline a few times per timeout.
final class HTTPConnectionControl: Sendable {
    /// What the connection is waiting for: decides how an expired wait is woken.
    enum Phase: UInt8 {
        /// Keep-alive: waiting for the first byte of the next request (or of the first one).
        case idle
        /// Reading a request head, some of it already received.
        case head
        /// Reading a request body for the responder.
        case body
        /// Waiting for the client to take response bytes.
        case write
    }

    static let noDeadline = UInt64.max
    /// The sweeper's mark: the wait in progress passed its deadline and was woken.
    static let expired = UInt64(0)

    let stream: TCPStream
    private let deadline = Atomic<UInt64>(HTTPConnectionControl.noDeadline)
    private let phaseValue = Atomic<UInt8>(Phase.idle.rawValue)

    init(stream: TCPStream) {
        self.stream = stream
    }

    var phase: Phase { Phase(rawValue: phaseValue.load(ordering: .relaxed))! }

    /// Starts a wait that must end by `deadline`.
    func arm(_ phase: Phase, until deadline: IOClock.Instant) {
        phaseValue.store(phase.rawValue, ordering: .relaxed)
        // Never 0 (`expired`) or max (`noDeadline`): the monotonic clock is far from both.
        // An idle wait stores in sequential consistency: it pairs with graceful shutdown, which
        // sets the draining flag and then looks at the deadline, while the connection stores the
        // deadline and then looks at the flag (`HTTPConnection.waitForRequest`); so at least one
        // of the two sees the other, and no idle connection sleeps through the shutdown.
        if phase == .idle { self.deadline.store(deadline.nanoseconds, ordering: .sequentiallyConsistent) } else { self.deadline.store(deadline.nanoseconds, ordering: .relaxed) }
    }

    /// Ends the wait; true if the sweeper expired it first (its stream was then shut down or
    /// closed, so the connection must not carry on as if nothing happened).
    func disarm() -> Bool {
        deadline.exchange(Self.noDeadline, ordering: .relaxed) == Self.expired
    }

    /// Called by the sweeper: if the wait in progress passed its deadline (and is still the same
    /// wait: compare-and-exchange on the deadline it saw), marks it and wakes it. A read is woken
    /// by shutting down the read side (it returns end of file), so that the connection can still
    /// answer `408 Request Timeout`; a write by closing the socket, since a client that reads
    /// nothing gets no answer either.
    func expireIfDue(now: IOClock.Instant) {
        let seen = deadline.load(ordering: .relaxed)
        guard seen != Self.noDeadline, seen != Self.expired, seen <= now.nanoseconds else { return }
        guard deadline.compareExchange(expected: seen, desired: Self.expired, ordering: .relaxed).exchanged else { return }
        if phase == .write {
            stream.close()
        } else {
            // The socket may be closing at the same moment: a failed shutdown means it is.
            try? stream.shutdown(.read)
        }
    }

    /// Graceful shutdown: a connection waiting for its next request is told the stream ended.
    func wakeIfIdle() {
        if deadline.load(ordering: .sequentiallyConsistent) != Self.noDeadline, phase == .idle {
            try? stream.shutdown(.read)
        }
    }
}

/// The open connections of one server, for the sweeper, graceful shutdown, the connection limit
/// and `serve`'s wait for its connections to end.
final class HTTPConnectionRegistry: Sendable {
    private struct State {
        var connections: [ObjectIdentifier: HTTPConnectionControl] = [:]
        /// Accept loops waiting for a free slot (at the connection limit).
        var slotWaiters: [CheckedContinuation<Void, Never>] = []
        /// `serve` calls waiting for the last connection to end.
        var emptyWaiters: [CheckedContinuation<Void, Never>] = []
        var listeners: [TCPListener] = []
        var isDraining = false
    }

    private let state = Locked(State())
    private let draining = Atomic<Bool>(false)
    let maxConnections: Int

    init(maxConnections: Int) {
        self.maxConnections = maxConnections
    }

    /// Sequentially consistent: see `HTTPConnectionControl.arm`.
    var isDraining: Bool { draining.load(ordering: .sequentiallyConsistent) }

    var count: Int { state.withLock { $0.connections.count } }

    func add(_ control: HTTPConnectionControl) {
        state.withLock { $0.connections[ObjectIdentifier(control)] = control }
        // Shutdown may have begun between the accept and now: wake the connection when it waits.
        if isDraining { control.wakeIfIdle() }
    }

    func remove(_ control: HTTPConnectionControl) {
        let (slotWaiter, emptyWaiters) = state.withLock { state -> (CheckedContinuation<Void, Never>?, [CheckedContinuation<Void, Never>]) in
            state.connections[ObjectIdentifier(control)] = nil
            let slotWaiter = state.slotWaiters.isEmpty ? nil : state.slotWaiters.removeFirst()
            guard state.connections.isEmpty else { return (slotWaiter, []) }
            defer { state.emptyWaiters = [] }
            return (slotWaiter, state.emptyWaiters)
        }
        slotWaiter?.resume()
        for waiter in emptyWaiters { waiter.resume() }
    }

    /// Returns once fewer than `maxConnections` are open (at once, mostly).
    func waitForSlot() async {
        while true {
            let full = state.withLock { $0.connections.count >= maxConnections }
            guard full else { return }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let stillFull = state.withLock { state -> Bool in
                    guard state.connections.count >= maxConnections, !state.isDraining else { return false }
                    state.slotWaiters.append(continuation)
                    return true
                }
                if !stillFull { continuation.resume() }
            }
            if isDraining { return }
        }
    }

    /// Returns once no connection is open.
    func waitUntilEmpty() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let empty = state.withLock { state -> Bool in
                guard !state.connections.isEmpty else { return true }
                state.emptyWaiters.append(continuation)
                return false
            }
            if empty { continuation.resume() }
        }
    }

    /// Remembers a listener, so that graceful shutdown closes it; closes it at once if shutdown
    /// has already begun.
    func add(_ listener: TCPListener) {
        let closeNow = state.withLock { state -> Bool in
            if state.isDraining { return true }
            state.listeners.append(listener)
            return false
        }
        if closeNow { listener.close() }
    }

    /// Stops accepting (closes the listeners, releases the accept loops waiting for a slot) and
    /// wakes every connection that is waiting for its next request. Idempotent.
    func beginDraining() {
        draining.store(true, ordering: .sequentiallyConsistent)
        let (listeners, slotWaiters, connections) = state.withLock { state in
            state.isDraining = true
            defer { (state.listeners, state.slotWaiters) = ([], []) }
            return (state.listeners, state.slotWaiters, Array(state.connections.values))
        }
        for listener in listeners { listener.close() }
        for waiter in slotWaiters { waiter.resume() }
        for connection in connections { connection.wakeIfIdle() }
    }

    /// Closes every open connection at once (the pending operations fail): what cancellation does.
    func closeAll() {
        let connections = state.withLock { Array($0.connections.values) }
        for connection in connections { connection.stream.close() }
    }

    /// The sweeper's pass: wakes every wait that passed its deadline.
    func expireDue(now: IOClock.Instant) {
        state.withLock { state in
            for connection in state.connections.values { connection.expireIfDue(now: now) }
        }
    }
}
