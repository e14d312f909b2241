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

    /// `read(2)` appended to `bytes`, up to `maxBytes`, waiting for readiness; 0 at end of stream.
    ///
    /// No scratch buffer: the syscall writes into the array's own storage. That storage cannot be
    /// borrowed across a suspension, but it need not be: `perform` suspends between attempts, and
    /// each attempt is synchronous, so each borrows the array anew (`append(addingCapacity:)`
    /// grows it geometrically, as `append` does, and leaves it as it was when nothing arrives).
    nonisolated(nonsending)
    func readStream(appendingTo bytes: inout [UInt8], maxBytes: Int) async throws -> Int {
        guard maxBytes > 0 else {
            throw IOError.invalidArgument("read(appendingTo:maxBytes: \(maxBytes))", "maxBytes must be at least 1 (0 means end of stream)")
        }
        return try await perform(.read, "read") { (fd) throws(IOError) -> IOAttempt<Int> in
            var attempt = IOAttempt<Int>.wouldBlock
            try bytes.append(addingCapacity: maxBytes) { (span) throws(IOError) in
                try span.withUnsafeMutableBufferPointer { (buffer, initialized) throws(IOError) in
                    attempt = try Self.readAttempt(fd, UnsafeMutableRawBufferPointer(buffer))
                    if case .complete(let count) = attempt { initialized += count }
                    if case .drained(let count) = attempt { initialized += count }
                }
            }
            return attempt
        }
    }

    /// `read(2)` into the uninitialized tail of `span`, up to its free capacity, waiting for
    /// readiness; 0 at end of stream. As `readStream(appendingTo:)`, each attempt borrows the
    /// span's memory anew, inside a synchronous closure.
    nonisolated(nonsending)
    func readStream(into span: inout OutputRawSpan) async throws -> Int {
        guard span.freeCapacity > 0 else {
            throw IOError.invalidArgument("read(into: OutputRawSpan)", "the span is full; a read needs room for at least one byte (0 means end of stream)")
        }
        return try await perform(.read, "read") { (fd) throws(IOError) -> IOAttempt<Int> in
            try span.withUnsafeMutableBytes { (buffer, initialized) throws(IOError) -> IOAttempt<Int> in
                let attempt = try Self.readAttempt(fd, UnsafeMutableRawBufferPointer(rebasing: buffer[initialized...]))
                if case .complete(let count) = attempt { initialized += count }
                if case .drained(let count) = attempt { initialized += count }
                return attempt
            }
        }
    }

    /// `readStream(into: OutputRawSpan)` for a typed span of bytes.
    nonisolated(nonsending)
    func readStream(into span: inout OutputSpan<UInt8>) async throws -> Int {
        guard span.freeCapacity > 0 else {
            throw IOError.invalidArgument("read(into: OutputSpan<UInt8>)", "the span is full; a read needs room for at least one byte (0 means end of stream)")
        }
        return try await perform(.read, "read") { (fd) throws(IOError) -> IOAttempt<Int> in
            try span.withUnsafeMutableBufferPointer { (buffer, initialized) throws(IOError) -> IOAttempt<Int> in
                let attempt = try Self.readAttempt(fd, UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(buffer)[initialized...]))
                if case .complete(let count) = attempt { initialized += count }
                if case .drained(let count) = attempt { initialized += count }
                return attempt
            }
        }
    }

    /// One non-blocking `read(2)` into `buffer` (not empty). A short, non-empty read drained the
    /// socket buffer (edge-triggered epoll).
    @inline(__always)
    private static func readAttempt(_ fd: CInt, _ buffer: UnsafeMutableRawBufferPointer) throws(IOError) -> IOAttempt<Int> {
        switch try nonBlockingSyscall("read", { Glibc.read(fd, buffer.baseAddress, buffer.count) }) {
        case .wouldBlock: return .wouldBlock
        case .done(let count): return count > 0 && count < buffer.count ? .drained(count) : .complete(count)
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

    /// Writes every byte of every chunk, in order, with as few `sendmsg(2)` calls as the socket
    /// allows (one when the socket buffer has room: a gathered write, no copy into one buffer).
    /// Holds the write turn for the whole call, as `writeStream`, so it is one whole write: other
    /// writes come before or after all of it. Each attempt borrows the chunks' storage anew (a
    /// pointer never crosses a suspension); chunks without contiguous storage are copied first.
    nonisolated(nonsending)
    func writeStream<Chunk: Collection<UInt8> & Sendable>(gathering chunks: [Chunk]) async throws {
        guard chunks.allSatisfy({ $0.withContiguousStorageIfAvailable({ _ in () }) != nil }) else {
            return try await writeStream(gathering: chunks.map { Array($0) })
        }
        try await enterTurn(.write, "write")
        defer { leaveTurn(.write) }
        var position = GatherPosition(chunk: 0, offset: 0)
        position.skipEmpty(chunks)
        if position.chunk == chunks.count { return }
        if let written = try attemptNow(.write, "write (sendmsg)", { (fd) throws(IOError) in try Self.gatherAttempt(fd, chunks, from: position) }) {
            position.advance(by: written, in: chunks)
        }
        while position.chunk < chunks.count {
            let start = position
            let written = try await performHoldingTurn(.write, "write (sendmsg)") { (fd) throws(IOError) in
                try Self.gatherAttempt(fd, chunks, from: start)
            }
            position.advance(by: written, in: chunks)
        }
    }

    /// Where a gathered write stands: the next byte to send is `chunks[chunk]`'s `offset`-th.
    struct GatherPosition {
        var chunk: Int
        var offset: Int

        mutating func skipEmpty<Chunk: Collection<UInt8>>(_ chunks: [Chunk]) {
            while chunk < chunks.count && offset == chunks[chunk].count {
                chunk += 1
                offset = 0
            }
        }

        mutating func advance<Chunk: Collection<UInt8>>(by count: Int, in chunks: [Chunk]) {
            var remaining = count
            while remaining > 0 {
                let step = min(remaining, chunks[chunk].count - offset)
                offset += step
                remaining -= step
                skipEmpty(chunks)
            }
            skipEmpty(chunks)
        }
    }

    /// The most buffers one `sendmsg` takes (`IOV_MAX` on Linux); a longer gather takes more calls.
    static let maxGatherCount = 1024

    /// One `sendmsg(2)` with `MSG_NOSIGNAL` of the chunks from `start` (at most `maxGatherCount`).
    /// `writev` would do the same but raise `SIGPIPE` on a reset peer.
    private static func gatherAttempt<Chunk: Collection<UInt8>>(
        _ fd: CInt, _ chunks: [Chunk], from start: GatherPosition
    ) throws(IOError) -> IOAttempt<Int> {
        let count = min(chunks.count - start.chunk, maxGatherCount)
        return try withUnsafeTemporaryAllocation(of: iovec.self, capacity: count) { (vectors) throws(IOError) -> IOAttempt<Int> in
            try withGatheredStorage(chunks, start, index: 0, count: count, vectors) { (total) throws(IOError) -> IOAttempt<Int> in
                var message = msghdr()
                message.msg_iov = vectors.baseAddress
                message.msg_iovlen = count
                switch try nonBlockingSyscall("write (sendmsg)", { Glibc.sendmsg(fd, &message, CInt(MSG_NOSIGNAL)) }) {
                case .wouldBlock: return .wouldBlock
                case .done(let written): return written < total ? .drained(written) : .complete(written)
                }
            }
        }
    }

    /// Borrows the storage of `count` chunks from `start` (one nested borrow per chunk, so that all
    /// are valid at once), fills `vectors` with them, and runs `body` with their total size.
    private static func withGatheredStorage<Chunk: Collection<UInt8>>(
        _ chunks: [Chunk], _ start: GatherPosition, index: Int, count: Int, _ vectors: UnsafeMutableBufferPointer<iovec>,
        total: Int = 0, _ body: (Int) throws(IOError) -> IOAttempt<Int>
    ) throws(IOError) -> IOAttempt<Int> {
        if index == count { return try body(total) }
        let chunk = chunks[start.chunk + index]
        let skip = index == 0 ? start.offset : 0
        return try chunk.withContiguousStorageIfAvailable { storage in
            let base = UnsafeMutableRawPointer(mutating: UnsafeRawPointer(storage.baseAddress))
            vectors[index] = iovec(iov_base: base.map { $0 + skip }, iov_len: storage.count - skip)
            return Result { () throws(IOError) in
                try withGatheredStorage(chunks, start, index: index + 1, count: count, vectors, total: total + storage.count - skip, body)
            }
        }!.get()
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
    func shutdownStream(_ direction: StreamSocket.ShutdownDirection) throws(IOError) {
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
    /// The first back-off of a call, and the recovery after it, are logged to the logger of the
    /// pool whose thread runs the accept (`PoolEvents.current`; off-pool: nowhere).
    nonisolated(nonsending)
    func acceptConnection(onBackoff: () -> Void) async throws -> SocketHandle {
        var backoffs = 0
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
                if backoffs > 0 { PoolEvents.current.acceptRecovered(afterBackoffs: backoffs, operation: "accept") }
                return SocketHandle(fd: fd)
            } catch let error as IOError where TCPListener.acceptErrorAction(error.errno) == .backOff {
                onBackoff()
                backoffs += 1
                if backoffs == 1 { PoolEvents.current.acceptBackingOff(error.errno, operation: "accept") }
                try await SleepDispatcher.sleep(nanoseconds: TCPListener.acceptBackoff.wholeNanoseconds)
            }
        }
    }
}
