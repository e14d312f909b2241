import CIOPoolShims
import Glibc
import SystemPackage

// The byte-stream and accept operations shared by the stream socket types (TCPStream and
// UnixStream, TCPListener and UnixListener), written once on the socket core.

extension SocketHandle {
    /// `read(2)` into `buffer`, waiting for readiness; 0 at end of stream.
    /// Inlined: an async call that is not inlined allocates its frame on the task (measured with
    /// callgrind on the echo server: each frame fewer is ~110 instructions per message fewer).
    @inline(__always)
    nonisolated(nonsending)
    func readStream(into buffer: UnsafeMutableRawBufferPointer) async throws -> Int {
        guard buffer.count > 0 else {
            throw IOError.invalidArgument("read(into:)", "the buffer is empty; a read needs room for at least one byte (0 means end of stream)")
        }
        return try await perform(.read, "read") { (fd) throws(IOError) -> IOAttempt<Int> in
            switch try nonBlockingSyscall("read", { ciopool_read(fd, buffer.baseAddress, UInt(buffer.count)) }) {
            case .wouldBlock: return .wouldBlock
            // A short, non-empty read drained the socket buffer (edge-triggered epoll).
            case .done(let count): return count > 0 && count < buffer.count ? .drained(count) : .complete(count)
            }
        }
    }

    /// Writes all of `buffer`: first what the socket takes now, then waiting for writability. Holds
    /// the write turn for the whole call, so concurrent writes never interleave.
    nonisolated(nonsending)
    func writeStream(_ buffer: UnsafeRawBufferPointer) async throws {
        try await enterTurn(.write, "write")
        defer { leaveTurn(.write) }
        var offset = try writeNowHoldingTurn(buffer)
        while offset < buffer.count {
            offset += try await performHoldingTurn(.write, "write") { (fd) throws(IOError) in
                try Self.sendAttempt(fd, UnsafeRawBufferPointer(rebasing: buffer[offset...]))
            }
        }
    }

    /// Starts a whole write without suspending, for `copy`: takes the write turn if it is free and
    /// writes what the socket takes now. Returns `nil` if another write holds the turn (nothing was
    /// written: call ``writeStream(_:)-(UnsafeRawBufferPointer)``). Otherwise returns the count
    /// written; if that is all of `buffer` the turn is given back, else the caller still holds it
    /// and must finish with `finishWrite(_:)`, which gives it back.
    @inline(__always)  // into `copy`: once per message
    func startWriteWithoutWaiting(_ buffer: UnsafeRawBufferPointer) throws(IOError) -> Int? {
        guard writeGate.tryEnter() else { return nil }
        let written: Int
        do {
            written = try writeNowHoldingTurn(buffer)
        } catch {
            writeGate.leave()
            throw error
        }
        if written == buffer.count { writeGate.leave() }
        return written
    }

    /// Writes the rest of a write begun by `startWriteWithoutWaiting(_:)`, then gives the turn back.
    nonisolated(nonsending)
    func finishWrite(_ rest: UnsafeRawBufferPointer) async throws {
        defer { leaveTurn(.write) }
        var offset = 0
        while offset < rest.count {
            offset += try await performHoldingTurn(.write, "write") { (fd) throws(IOError) in
                try Self.sendAttempt(fd, UnsafeRawBufferPointer(rebasing: rest[offset...]))
            }
        }
    }

    /// Writes what the socket buffer takes now; returns the byte count (0 if it is full). The
    /// caller holds the write turn.
    @inline(__always)
    private func writeNowHoldingTurn(_ buffer: UnsafeRawBufferPointer) throws(IOError) -> Int {
        guard !buffer.isEmpty else { return 0 }
        return try attemptNow(.write, "write") { (fd) throws(IOError) in try Self.sendAttempt(fd, buffer) } ?? 0
    }

    /// Writes all of `bytes`, borrowing their storage anew for every attempt (a pointer never
    /// crosses a suspension); a collection without contiguous storage is copied into an array
    /// first. Holds the write turn for the whole call.
    nonisolated(nonsending)
    func writeStream<Bytes: Collection<UInt8> & Sendable>(_ bytes: Bytes) async throws {
        guard bytes.withContiguousStorageIfAvailable({ _ in () }) != nil else {
            return try await writeStream(Array(bytes))
        }
        try await enterTurn(.write, "write")
        defer { leaveTurn(.write) }
        let total = bytes.count
        var offset = 0
        while offset < total {
            offset += try await performHoldingTurn(.write, "write") { (fd) throws(IOError) in
                try bytes.withContiguousStorageIfAvailable { storage in
                    let rest = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(storage)[offset...])
                    return Result { () throws(IOError) in try Self.sendAttempt(fd, rest) }
                }!.get()
            }
        }
    }

    /// One `send(2)` with `MSG_NOSIGNAL` (a reset peer gives `EPIPE`, not `SIGPIPE`). A short send
    /// filled the socket buffer.
    private static func sendAttempt(_ fd: CInt, _ buffer: UnsafeRawBufferPointer) throws(IOError) -> IOAttempt<Int> {
        switch try nonBlockingSyscall("write", { ciopool_send(fd, buffer.baseAddress, UInt(buffer.count), CInt(MSG_NOSIGNAL)) }) {
        case .wouldBlock: return .wouldBlock
        case .done(let count): return count < buffer.count ? .drained(count) : .complete(count)
        }
    }

    /// `shutdown(2)` of one or both directions.
    func shutdownStream(_ direction: TCPStream.ShutdownDirection) throws(IOError) {
        let how: CInt
        switch direction {
        case .read: how = CInt(SHUT_RD)
        case .write: how = CInt(SHUT_WR)
        case .both: how = CInt(SHUT_RDWR)
        }
        _ = try withFD("shutdown") { (fd) throws(IOError) in try syscall("shutdown") { Glibc.shutdown(fd, how) } }
    }

    // MARK: Accepting

    /// Accepts one connection on a listening socket: a non-blocking, close-on-exec socket.
    ///
    /// A connection that failed while queued is skipped (see `TCPListener.acceptErrorAction`);
    /// running out of descriptors or memory calls
    /// `onBackoff`, waits ``TCPListener/acceptBackoff`` and tries again (see ``TCPListener``).
    nonisolated(nonsending)
    func acceptConnection(onBackoff: () -> Void) async throws -> SocketHandle {
        while true {
            do {
                let fd = try await perform(.read, "accept") { (fd) throws(IOError) -> IOAttempt<CInt> in
                    while true {
                        switch rawSyscall("accept4", {
                            ciopool_accept4(fd, CInt(SOCK_NONBLOCK.rawValue) | CInt(SOCK_CLOEXEC.rawValue))
                        }) {
                        case .done(let accepted):
                            return .complete(accepted)
                        case .failed(let errno) where errno == .resourceTemporarilyUnavailable || errno == .wouldBlock:
                            return .wouldBlock
                        case .failed(let errno):
                            // Retryable errors consumed one bad connection: go on with the next.
                            if TCPListener.acceptErrorAction(errno) == .retry { continue }
                            throw IOError(errno: errno, operation: "accept")
                        }
                    }
                }
                return SocketHandle(fd: fd)
            } catch let error as IOError where TCPListener.acceptErrorAction(error.errno) == .backOff {
                onBackoff()
                try await IOThread.sleep(nanoseconds: TCPListener.acceptBackoff.wholeNanoseconds)
            }
        }
    }
}
