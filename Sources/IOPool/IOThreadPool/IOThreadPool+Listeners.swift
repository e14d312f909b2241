extension IOThreadPool {
    /// Binds one listener per thread to the same address with `SO_REUSEPORT`, so the kernel spreads
    /// incoming connections over the threads. With port 0 the first listener picks a free port and
    /// the others bind the same one. `listeners[i]` is meant for `threads[i]`: pass the array to
    /// ``acceptOnEveryThread(_:_:)``.
    ///
    /// ```swift
    /// let listeners = try pool.listenOnEveryThread(SocketAddress("127.0.0.1:8080"))
    /// try pool.acceptOnEveryThread(listeners) { connection in
    ///     _ = try? await copy(from: connection, to: connection)
    ///     connection.close()
    /// }
    /// ```
    public func listenOnEveryThread(
        _ address: SocketAddress, backlog: CInt = TCPListener.defaultBacklog
    ) throws(IOError) -> [TCPListener] {
        let first = try TCPListener.bind(address, backlog: backlog, reusePort: true)
        var listeners = [first]
        let bound = try first.localAddress
        do {
            for _ in 1..<threads.count {
                listeners.append(try TCPListener.bind(bound, backlog: backlog, reusePort: true))
            }
        } catch {
            for listener in listeners { listener.close() }
            throw error
        }
        return listeners
    }

    /// Runs an accept loop for `listeners[i]` on `threads[i]`, and `handler` for each connection on
    /// the thread that accepted it: a connection never changes thread, and the kernel (not a
    /// user-space hand-off) chooses the thread. Close the listeners to end the loops: each loop's
    /// task then returns normally (``StreamListener/connections`` ends on a local close); another
    /// accept failure ends it with that error.
    ///
    /// - Precondition: one listener per thread (``listenOnEveryThread(_:backlog:)``).
    @discardableResult
    public func acceptOnEveryThread(
        _ listeners: [TCPListener], _ handler: @escaping @Sendable (TCPStream) async -> Void
    ) throws(IOPoolError) -> [Task<Void, any Error>] {
        usagePrecondition(
            listeners.count == threads.count,
            "acceptOnEveryThread needs one listener per thread (\(threads.count)), got \(listeners.count); use listenOnEveryThread")
        var loops: [Task<Void, any Error>] = []
        for (thread, listener) in zip(threads, listeners) {
            loops.append(
                try thread.spawn {
                    for try await connection in listener.connections {
                        IOPool.spawn { await handler(connection) }  // the free spawn: this same thread
                    }
                })
        }
        return loops
    }
}
