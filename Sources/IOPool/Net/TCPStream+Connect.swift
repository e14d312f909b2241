import Glibc
import SystemPackage

// Connecting: one attempt (`connectSocket`), the public forms with a timeout, a local address or a
// host name, and the race between attempts that they share (Happy Eyeballs v2, RFC 8305).
//
// The race is one task group whose children are the events it waits for: the name's resolution,
// each connection attempt, the attempt-delay timer, the overall deadline. The parent reacts to
// each as it comes:
// - resolved: order the addresses (RFC 8305 §4: interleave the families, starting with the family
//   of getaddrinfo's first answer, which RFC 6724 made the preferred one) and start the first;
// - an attempt failed: start the next at once (§5: no need to wait out the delay);
// - the delay passed (250 ms, §8's recommended Connection Attempt Delay) with no answer: start the
//   next, the earlier ones still running; a timer of an earlier step is recognised by its
//   generation and ignored;
// - an attempt succeeded: that stream wins. Everything else is cancelled, and the parent waits for
//   every child (structured: nothing outlives the call); a cancelled attempt closes its socket as
//   it throws, and a second success that raced the first is closed by the parent;
// - the deadline passed, or the caller was cancelled: the same, then throw.
//
// Timeout errors are `IOError`s with `ETIMEDOUT` (not ``TimeoutError``): the kernel reports a
// connect that it gave up on with ETIMEDOUT too, so a caller handles "no connection in time" one
// way whoever decided it, and everything a connect throws (but cancellation and a name that does
// not resolve) is an `IOError` naming the target.

extension TCPStream {
    /// How long a connect by name waits for an attempt before starting the next address's in
    /// parallel: 250 ms, RFC 8305's recommended Connection Attempt Delay.
    public static let connectionAttemptDelay: Duration = .milliseconds(250)

    /// Connects to `address`, optionally from a local address and within a time limit.
    ///
    /// - Parameters:
    ///   - address: the peer to connect to.
    ///   - local: binds the socket to this address before connecting (a source address of one of
    ///     the machine's interfaces; port 0 lets the kernel choose the port at connect time, with
    ///     `IP_BIND_ADDRESS_NO_PORT`, so that many such connections do not run out of ports). It
    ///     must be of `address`'s family.
    ///   - timeout: gives up after this long: the attempt is cancelled and its socket closed. `nil`
    ///     waits as long as the kernel does (about two minutes of SYN retries).
    /// - Throws: ``IOError`` with the operation `"connect to <address>"`: `ETIMEDOUT` when
    ///   `timeout` passed (the detail says how long it was) or the kernel gave up; `ECONNREFUSED`
    ///   when nothing listens there (also when the socket met itself there: a TCP self-connect,
    ///   which is closed); `EAFNOSUPPORT` when `local` is of the other family; from the
    ///   bind, `EADDRINUSE` or `EADDRNOTAVAIL` (operation `"bind to <local>"`).
    ///   `CancellationError` if the task is cancelled meanwhile (the socket is closed).
    nonisolated(nonsending)
    public static func connect(
        to address: SocketAddress, from local: SocketAddress? = nil, timeout: Duration? = nil
    ) async throws -> TCPStream {
        if timeout == nil { return try await connectSocket(to: address, from: local) }
        return try await race(.addresses([address]), describedAs: address.description, from: local, timeout: timeout)
    }

    /// Connects to `host` on `port`, trying its addresses as Happy Eyeballs v2 does (RFC 8305).
    ///
    /// The host is resolved with ``SocketAddress/resolve(host:port:)`` (a numeric host needs no
    /// lookup). The addresses are tried in turn, alternating IPv6 and IPv4 starting with the family
    /// of the first one returned; each attempt that has not succeeded after
    /// ``connectionAttemptDelay`` (250 ms) is left running while the next starts, and one that
    /// fails starts the next at once. The first connection made wins; the other attempts are
    /// cancelled and their sockets closed before this returns.
    ///
    /// - Parameters:
    ///   - host: a name to resolve, or a numeric IPv4 or IPv6 address.
    ///   - port: the port to connect to on every address of `host`.
    ///   - local: binds each attempt to this local address (see ``connect(to:from:timeout:)``);
    ///     only the host's addresses of its family are tried.
    ///   - timeout: a limit on the whole connect, resolution included: when it passes, every
    ///     attempt is cancelled and its socket closed. `nil`: no limit but the kernel's.
    /// - Throws:
    ///   - ``NameResolutionError`` if `host` does not resolve (it names the host and getaddrinfo's
    ///     reason, e.g. `EAI_NONAME`).
    ///   - ``IOError`` with the operation `"connect to <host>:<port>"`: when every address failed,
    ///     the errno they share (or else the first address's) and a detail listing each address
    ///     and its error; `ETIMEDOUT` when `timeout` passed, the detail listing the addresses
    ///     tried and how each ended; `EAFNOSUPPORT` if `local` has a family none of the addresses has.
    ///   - `CancellationError` if the task is cancelled meanwhile (every attempt's socket is closed).
    nonisolated(nonsending)
    public static func connect(
        host: String, port: UInt16, from local: SocketAddress? = nil, timeout: Duration? = nil
    ) async throws -> TCPStream {
        try await connect(host: host, port: port, from: local, timeout: timeout, attemptDelay: connectionAttemptDelay)
    }

    /// ``connect(host:port:from:timeout:)`` with another Connection Attempt Delay (tests).
    nonisolated(nonsending)
    static func connect(
        host: String, port: UInt16, from local: SocketAddress?, timeout: Duration?, attemptDelay: Duration
    ) async throws -> TCPStream {
        let target = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]:\(port)" : "\(host):\(port)"
        return try await race(.name(host: host, port: port), describedAs: target, from: local, timeout: timeout, attemptDelay: attemptDelay)
    }

    // MARK: One attempt

    /// Opens a socket, binds it to `local` if given, connects it to `address` and waits for the
    /// outcome. A failure or cancellation closes the socket before it throws.
    nonisolated(nonsending)
    static func connectSocket(to address: SocketAddress, from local: SocketAddress?) async throws -> TCPStream {
        let handle = try SocketHandle(family: address.protocolFamily, type: CInt(SOCK_STREAM.rawValue))
        let stream = TCPStream(handle: handle)
        do {
            return try await connect(stream, to: address, from: local)
        } catch {
            // Closed here, not left to the stream's deinit: a cancelled wait's clean-up on the
            // socket's loop may still hold the stream for a moment, and the descriptor would
            // outlive the throw (a test saw it open, in SYN_SENT, after the cancelled connect).
            stream.close()
            throw error
        }
    }

    nonisolated(nonsending)
    private static func connect(_ stream: TCPStream, to address: SocketAddress, from local: SocketAddress?) async throws -> TCPStream {
        let handle = stream.handle
        if let local {
            guard local.family == address.family else {
                throw IOError(
                    errno: .addressFamilyNotSupported, operation: "connect to \(address)",
                    detail: "the local address \(local) is of the other family")
            }
            if local.port == 0 {
                // Best effort (Linux 4.2+): without it, bind picks a port unique for every
                // destination, and 28k ephemeral ports cap the connections of one source address.
                try? handle.setOption(level: CInt(IPPROTO_IP), name: IP_BIND_ADDRESS_NO_PORT, CInt(1), "setsockopt(IP_BIND_ADDRESS_NO_PORT)")
            }
            _ = try handle.withFD("bind") { (fd) throws(IOError) in
                try syscall("bind", describedAs: "bind to \(local)") { local.withSockAddr { Glibc.bind(fd, $0, $1) } }
            }
        }
        let started = try handle.withFD("connect") { (fd) throws(IOError) -> Bool in
            switch rawSyscall("connect", { address.withSockAddr { Glibc.connect(fd, $0, $1) } }) {
            case .done: return true
            case .failed(let errno) where errno == .nowInProgress: return false
            case .failed(let errno): throw IOError(errno: errno, operation: "connect to \(address)")
            }
        }
        if started { return try refusingASelfConnect(stream, to: address) }
        // In progress: writability signals the outcome, SO_ERROR says which.
        try await handle.perform(.write, "connect") { (fd) throws(IOError) -> IOAttempt<Void> in
            var error: CInt = 0
            var length = socklen_t(MemoryLayout<CInt>.size)
            _ = try syscall("getsockopt(SO_ERROR)") { getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) }
            if error != 0 { throw IOError(errno: Errno(rawValue: error), operation: "connect to \(address)") }
            var peer = sockaddr_storage()
            var peerLength = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let connected = withUnsafeMutablePointer(to: &peer) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(fd, $0, &peerLength) }
            }
            return connected == 0 ? .complete(()) : .wouldBlock
        }
        return try refusingASelfConnect(stream, to: address)
    }

    /// Throws `ECONNREFUSED` if `stream` is connected to itself, and returns it otherwise.
    ///
    /// A connect to a local port where nothing listens can be answered by the connecting socket
    /// itself: when the port the kernel picks as the local one is the port being connected to,
    /// the SYN meets its own socket and TCP's simultaneous open completes a "connection" to itself
    /// (a listener's port is never picked, so this happens only where nothing listens). The
    /// caller asked for a peer and got none: that is a refusal, as Go's `net.Dial` also treats it.
    /// One `getsockname` per connect, compared with the address already known.
    private static func refusingASelfConnect(_ stream: TCPStream, to address: SocketAddress) throws(IOError) -> TCPStream {
        guard try stream.localAddress == address else { return stream }
        throw IOError(
            errno: .connectionRefused, operation: "connect to \(address)",
            detail: "the socket connected to itself (nothing listens there, and its own local port was \(address.port))")
    }

    // MARK: The race

    /// What the race connects to.
    enum ConnectTarget: Sendable {
        /// Addresses known already, tried in this order (`race` interleaves them).
        case addresses([SocketAddress])
        /// A host to resolve first.
        case name(host: String, port: UInt16)
    }

    /// RFC 8305 §4: alternate the families, starting with the first address's family and keeping
    /// each family's own order.
    static func interleavedByFamily(_ addresses: [SocketAddress]) -> [SocketAddress] {
        guard let first = addresses.first else { return [] }
        let preferred = addresses.filter { $0.family == first.family }
        let other = addresses.filter { $0.family != first.family }
        var ordered: [SocketAddress] = []
        ordered.reserveCapacity(addresses.count)
        for index in 0..<max(preferred.count, other.count) {
            if index < preferred.count { ordered.append(preferred[index]) }
            if index < other.count { ordered.append(other[index]) }
        }
        return ordered
    }

    /// One ending of one of the race's children.
    private enum RaceEvent: Sendable {
        case resolved(Result<[SocketAddress], any Error>)
        case attemptEnded(index: Int, Result<TCPStream, any Error>)
        case attemptDelayPassed(generation: Int)
        case deadlinePassed
        /// A timer ended by cancellation (the race is over, or the caller was cancelled).
        case timerCancelled
    }

    /// Happy Eyeballs over `target` (see the notes at the top of the file). `description` names
    /// the target in errors.
    nonisolated(nonsending)
    static func race(
        _ target: ConnectTarget, describedAs description: String, from local: SocketAddress?, timeout: Duration?,
        attemptDelay: Duration = connectionAttemptDelay
    ) async throws -> TCPStream {
        let operation = "connect to \(description)"
        let deadline = timeout.map { IOClock.Instant.now.advanced(by: $0) }
        let outcome = await withTaskGroup(of: RaceEvent.self, returning: Result<TCPStream, any Error>.self) { group in
            if let deadline {
                group.addTask {
                    do {
                        try await sleep(until: deadline)
                        return .deadlinePassed
                    } catch {
                        return .timerCancelled
                    }
                }
            }
            var addresses: [SocketAddress] = []
            var started = 0
            var running = 0
            var generation = 0
            var failures: [(SocketAddress, any Error)] = []

            func startNextAttempt() {
                let index = started
                let address = addresses[index]
                started += 1
                running += 1
                group.addTask {
                    do {
                        return .attemptEnded(index: index, .success(try await connectSocket(to: address, from: local)))
                    } catch {
                        return .attemptEnded(index: index, .failure(error))
                    }
                }
                generation += 1
                if started < addresses.count {
                    let stepGeneration = generation
                    group.addTask {
                        do {
                            try await sleep(for: attemptDelay)
                            return .attemptDelayPassed(generation: stepGeneration)
                        } catch {
                            return .timerCancelled
                        }
                    }
                }
            }

            func begin(with resolved: [SocketAddress]) -> (any Error)? {
                var candidates = resolved
                if let local {
                    candidates = resolved.filter { $0.family == local.family }
                    if candidates.isEmpty {
                        return IOError(
                            errno: .addressFamilyNotSupported, operation: operation,
                            detail: "no address of the local address \(local)'s family among \(resolved.map(\.description).joined(separator: ", "))")
                    }
                }
                addresses = interleavedByFamily(candidates)
                startNextAttempt()
                return nil
            }

            /// Cancels every child and waits for them, closing any stream that connected meanwhile.
            func endRace(_ result: Result<TCPStream, any Error>) async -> Result<TCPStream, any Error> {
                group.cancelAll()
                while let event = await group.next() {
                    if case .attemptEnded(_, .success(let stream)) = event { stream.close() }
                }
                return result
            }

            switch target {
            case .addresses(let known):
                if let error = begin(with: known) { return await endRace(.failure(error)) }
            case .name(let host, let port):
                group.addTask {
                    do {
                        return .resolved(.success(try await SocketAddress.resolve(host: host, port: port)))
                    } catch {
                        return .resolved(.failure(error))
                    }
                }
            }

            while let event = await group.next() {
                switch event {
                case .resolved(.success(let resolved)):
                    if let error = begin(with: resolved) { return await endRace(.failure(error)) }
                case .resolved(.failure(let error)):
                    return await endRace(.failure(error))
                case .attemptEnded(_, .success(let stream)):
                    return await endRace(.success(stream))
                case .attemptEnded(let index, .failure(let error)):
                    running -= 1
                    if Task.isCancelled { return await endRace(.failure(CancellationError())) }
                    failures.append((addresses[index], error))
                    if started < addresses.count {
                        startNextAttempt()
                    } else if running == 0 {
                        return await endRace(.failure(allAttemptsFailed(operation, failures)))
                    }
                case .attemptDelayPassed(let stepGeneration):
                    if stepGeneration == generation, started < addresses.count { startNextAttempt() }
                case .deadlinePassed:
                    return await endRace(.failure(timedOut(operation, timeout ?? .zero, addresses, started, failures)))
                case .timerCancelled:
                    if Task.isCancelled { return await endRace(.failure(CancellationError())) }
                }
            }
            preconditionFailure("the connect race ended without an outcome")
        }
        return try outcome.get()
    }

    /// The error when every attempt failed: their common errno (or the first's), and each one.
    private static func allAttemptsFailed(_ operation: String, _ failures: [(SocketAddress, any Error)]) -> any Error {
        if failures.count == 1, let only = failures[0].1 as? IOError { return only }
        let errnos = failures.compactMap { ($0.1 as? IOError)?.errno }
        // Shared by all, or else the first's: the most preferred address's error is the telling one.
        let errno = errnos.first ?? .ioError
        return IOError(
            errno: errno, operation: operation,
            detail: "every address failed: " + failures.map { "\($0.0): \(describeAttemptError($0.1))" }.joined(separator: "; "))
    }

    /// The error when the deadline passed: what each address started did.
    private static func timedOut(
        _ operation: String, _ timeout: Duration, _ addresses: [SocketAddress], _ started: Int,
        _ failures: [(SocketAddress, any Error)]
    ) -> IOError {
        var detail = "no connection within \(timeout)"
        if addresses.isEmpty {
            detail += " (still resolving the name)"
        } else {
            let attempts = addresses[..<started].map { address in
                if let failure = failures.first(where: { $0.0 == address }) {
                    return "\(address): \(describeAttemptError(failure.1))"
                }
                return "\(address): no answer"
            }
            detail += "; tried " + attempts.joined(separator: "; ")
            if started < addresses.count { detail += "; \(addresses.count - started) more not tried" }
        }
        return IOError(errno: .timedOut, operation: operation, detail: detail)
    }

    private static func describeAttemptError(_ error: any Error) -> String {
        guard let error = error as? IOError else { return "\(error)" }
        var text = "\(error.errno) (errno \(error.errno.rawValue))"
        if let detail = error.detail { text += ", \(detail)" }
        return text
    }
}
