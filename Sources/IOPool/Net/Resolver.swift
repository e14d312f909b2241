import Glibc

// Name resolution: `getaddrinfo(3)`, which blocks (it reads /etc/hosts, asks DNS servers and waits
// for their answers), so it runs inside this library's `blocking { }`: on the caller's pool's
// blocking budget (the calling worker or loop handed off first, so no loop thread and no thread of
// Swift's cooperative pool ever waits in it), or off-pool on a dedicated thread.
//
// Cancellation cannot interrupt getaddrinfo (glibc has no cancellable call short of
// getaddrinfo_a, which runs its own threads outside the budget). So the lookup runs in a task of
// its own, started where the caller runs, and the caller waits for it through a rendezvous that
// cancellation resolves at once: a cancelled (or timed-out) resolve returns promptly, and the
// abandoned lookup finishes on its thread, holding its unit of the budget until then, and its
// answer is dropped. This is what tokio's `lookup_host` does when its future is dropped.
//
// Options: `AF_UNSPEC` (both families, in the order getaddrinfo sorts them: RFC 6724, with
// /etc/gai.conf), `SOCK_STREAM` (one entry per address rather than one per socket type),
// `AI_NUMERICSERV` (the port is a number: no /etc/services lookup). Not `AI_ADDRCONFIG`: it hides
// the IPv6 addresses of a host that has only loopback IPv6 (containers), and Happy Eyeballs copes
// with an unreachable family anyway.

/// The error thrown when a host name cannot be resolved to any address.
///
/// ```swift
/// do {
///     _ = try await SocketAddress.resolve(host: "nowhere.invalid", port: 80)
/// } catch let error as NameResolutionError {
///     print(error)   // could not resolve "nowhere.invalid": Name or service not known (EAI_NONAME)
/// }
/// ```
public struct NameResolutionError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The host name that was looked up.
    public var host: String
    /// `getaddrinfo`'s error code (`EAI_NONAME`, `EAI_AGAIN`, `EAI_FAIL`, `EAI_SYSTEM`, ...), or 0
    /// when the name was rejected before any lookup (empty, or containing a NUL byte) or the
    /// lookup returned no usable address.
    public var code: CInt
    /// What went wrong: `gai_strerror`'s text for ``code`` (with the errno's text for
    /// `EAI_SYSTEM`), or why the name was rejected.
    public var reason: String

    public init(host: String, code: CInt, reason: String) {
        self.host = host
        self.code = code
        self.reason = reason
    }

    /// Whether trying again later may succeed: `EAI_AGAIN` (the DNS server did not answer in time
    /// or said "try again"). `EAI_NONAME` (no such name) and the others are not worth a retry.
    public var isTemporary: Bool { code == EAI_AGAIN }

    public var description: String {
        let name = NameResolutionError.codeNames[code].map { " (\($0))" } ?? (code == 0 ? "" : " (getaddrinfo error \(code))")
        return "could not resolve \(String(reflecting: host)): \(reason)\(name)"
    }

    private static let codeNames: [CInt: String] = [
        EAI_NONAME: "EAI_NONAME", EAI_AGAIN: "EAI_AGAIN", EAI_FAIL: "EAI_FAIL", EAI_SYSTEM: "EAI_SYSTEM",
        EAI_MEMORY: "EAI_MEMORY", EAI_FAMILY: "EAI_FAMILY", EAI_SERVICE: "EAI_SERVICE", EAI_BADFLAGS: "EAI_BADFLAGS",
        EAI_SOCKTYPE: "EAI_SOCKTYPE",
    ]
}

extension SocketAddress {
    /// Resolves `host` to its addresses, each with `port`: every address `getaddrinfo` returns,
    /// IPv6 and IPv4, in its order (RFC 6724's, the preferred first), without duplicates.
    ///
    /// `host` is a name (`"example.com"`, `"localhost"`) or a numeric address (`"127.0.0.1"`,
    /// `"::1"`, also `"[::1]"`; a numeric host is parsed at once, without a lookup or a thread).
    /// Names are looked up as the system does: /etc/hosts, then DNS, per /etc/nsswitch.conf.
    ///
    /// The lookup blocks a thread, never a loop or Swift's cooperative pool: it runs as
    /// `blocking { }` does where the caller runs (see ``blocking(_:)``), on the caller's pool's
    /// budget (``WorkStealingPool/Configuration/maxBlocking``, ``IOThreadPool/Configuration/maxBlocking``)
    /// or off-pool ``OffPoolBlocking/maxBlocking``, waiting in line when the budget is spent. How
    /// long a lookup may take is the system resolver's business (/etc/resolv.conf: `timeout`,
    /// default 5 s, times `attempts`, default 2, per server); bound it with a timeout.
    ///
    /// Cancellation: a cancelled resolve throws `CancellationError` at once, even while the lookup
    /// runs (getaddrinfo cannot be interrupted: it finishes on its thread, keeping its unit of the
    /// budget until then, and its answer is dropped).
    ///
    /// - Throws: ``NameResolutionError`` naming the host and getaddrinfo's reason (`EAI_NONAME` for
    ///   a name that does not exist, such as anything under `.invalid`; `EAI_AGAIN` when DNS did
    ///   not answer, see ``NameResolutionError/isTemporary``), also for an empty host or one with a
    ///   NUL byte; `CancellationError` as above.
    nonisolated(nonsending)
    public static func resolve(host: String, port: UInt16) async throws -> [SocketAddress] {
        try await resolve(host: host, port: port, using: lookUp)
    }

    /// `resolve(host:port:)` with another blocking lookup in getaddrinfo's place (tests).
    nonisolated(nonsending)
    static func resolve(
        host: String, port: UInt16,
        using lookUp: @escaping @Sendable (String, UInt16) throws(NameResolutionError) -> [SocketAddress]
    ) async throws -> [SocketAddress] {
        let host = host.hasPrefix("[") && host.hasSuffix("]") && host.count >= 2 ? String(host.dropFirst().dropLast()) : host
        if host.isEmpty { throw NameResolutionError(host: host, code: 0, reason: "the host name is empty") }
        if host.utf8.contains(0) { throw NameResolutionError(host: host, code: 0, reason: "the host name contains a NUL byte") }
        // A numeric host needs no lookup, so no thread and no unit of the blocking budget.
        if let numeric = try? SocketAddress(host: host, port: port) { return [numeric] }
        let rendezvous = LookupRendezvous()
        return try await withTaskCancellationHandler {
            try await withUnsafeThrowingContinuation { (continuation: UnsafeContinuation<[SocketAddress], any Error>) in
                guard rendezvous.install(continuation) else { return }
                let lookup: @Sendable () async -> Void = {
                    do {
                        let addresses = try await blocking { () throws(NameResolutionError) in try lookUp(host, port) }
                        rendezvous.finish(.success(addresses))
                    } catch {
                        rendezvous.finish(.failure(error))
                    }
                }
                // Where the caller runs, so that `blocking` takes that pool's budget; off-pool on
                // the global executor (not `spawn`, which would start the default IOThreadPool).
                if case .elsewhere = ExecutionContext.current {
                    Task.detached(operation: lookup)
                } else {
                    spawn(lookup)
                }
            }
        } onCancel: {
            rendezvous.cancel()
        }
    }

    /// The blocking `getaddrinfo` call and its list, turned into addresses.
    @Sendable static func lookUp(host: String, port: UInt16) throws(NameResolutionError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = CInt(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(host, String(port), &hints, &list)
        guard code == 0 else {
            var reason = String(cString: gai_strerror(code))
            if code == EAI_SYSTEM { reason += ": \(String(cString: strerror(Glibc.errno)))" }
            throw NameResolutionError(host: host, code: code, reason: reason)
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var entry = list
        while let current = entry {
            if let sockaddr = current.pointee.ai_addr,
                let address = try? SocketAddress(UnsafePointer(sockaddr), length: current.pointee.ai_addrlen),
                !addresses.contains(address)
            {
                addresses.append(address)
            }
            entry = current.pointee.ai_next
        }
        guard !addresses.isEmpty else {
            throw NameResolutionError(host: host, code: 0, reason: "getaddrinfo returned no IPv4 or IPv6 address")
        }
        return addresses
    }
}

/// Where a resolving task waits for its lookup: resolved by the lookup's answer or by the
/// caller's cancellation, whichever comes first; the other is then ignored.
private final class LookupRendezvous: Sendable {
    private enum State {
        case idle
        case waiting(UnsafeContinuation<[SocketAddress], any Error>)
        case ended
    }

    private let state = Locked<State>(.idle)

    /// Stores the caller's continuation; false (and the continuation resumed with
    /// `CancellationError`) if the caller was cancelled first, so no lookup should start.
    func install(_ continuation: UnsafeContinuation<[SocketAddress], any Error>) -> Bool {
        let installed = state.withLock { state -> Bool in
            guard case .idle = state else { return false }
            state = .waiting(continuation)
            return true
        }
        if !installed { continuation.resume(throwing: CancellationError()) }
        return installed
    }

    func finish(_ result: Result<[SocketAddress], any Error>) {
        take()?.resume(with: result)
    }

    func cancel() {
        let waiting = state.withLock { state -> UnsafeContinuation<[SocketAddress], any Error>? in
            if case .idle = state {
                state = .ended
                return nil
            }
            guard case .waiting(let continuation) = state else { return nil }
            state = .ended
            return continuation
        }
        waiting?.resume(throwing: CancellationError())
    }

    private func take() -> UnsafeContinuation<[SocketAddress], any Error>? {
        state.withLock { state in
            guard case .waiting(let continuation) = state else { return nil }
            state = .ended
            return continuation
        }
    }
}
