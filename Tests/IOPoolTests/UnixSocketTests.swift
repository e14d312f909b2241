import Glibc
@testable import IOPool
import SystemPackage
import Testing

/// Unix-domain stream sockets: `UnixSocketAddress`, `UnixListener`, `UnixStream`.
///
/// Path sockets live in a fresh directory per test (`mkdtemp` under /tmp, so that paths stay well
/// under the 107-byte limit), removed at the end; abstract names carry the process id and a random
/// number. No assertion depends on timing; as in TCPTests, waits that a bug could keep pending are
/// wrapped so that the suite's time limit closes the socket and the test fails instead of hanging.
@Suite(.timeLimit(.minutes(1)))
struct UnixSocketTests {
    // MARK: Echo

    // An echo server on an IOThreadPool (`spawnAll` over the listener), clients off-pool: each
    // client writes, half-closes, and reads the echo up to the server's half-close.
    @Test func echoOverAPathSocketOnAPool() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let address = try directory.address("echo.sock")
        let pool = try IOThreadPool(configuration: .init(threadCount: 2))
        let listener = try UnixListener.bind(address)
        #expect(try listener.localAddress == address)
        let acceptLoop = try pool.spawn { () async -> String in
            do throws(SpawnAllError<any Error>) {
                try await pool.spawnAll(listener.connections) { connection in
                    _ = try? await copy(from: connection, to: connection)
                    try? connection.shutdown(.write)
                    connection.close()
                }
                return "the accept loop ended without an error"
            } catch {
                return describe(error)
            }
        }

        for message in ["hello world", "bye world", String(repeating: "long ", count: 20_000)] {
            let client = try await UnixStream.connect(to: address)
            #expect(try client.remoteAddress == address)
            #expect(try client.localAddress == nil, "a client that did not bind is unnamed")
            let echoed = try await value(of: Task { () async throws -> [UInt8] in
                try await client.write(message.utf8)
                try client.shutdown(.write)
                return try await readToEnd(client)
            }) { client.close() }
            #expect(echoed == Array(message.utf8))
            client.close()
        }

        listener.close()
        await pool.shutdown()
        let ending = await acceptLoop.value
        #expect(ending == "the accept loop ended without an error", "\(ending)")  // connections ends on close
        #expect(pool.liveTaskCount == 0)
    }

    // The same without any pool of ours: both ends in plain Tasks (the default pool's reactor).
    @Test func echoOverAPathSocketOffPool() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let address = try directory.address("echo.sock")
        let listener = try UnixListener.bind(address)
        let server = Task { () async throws -> (offPool: Bool, local: UnixSocketAddress?, remote: UnixSocketAddress?) in
            let connection = try await listener.accept()
            _ = try await copy(from: connection, to: connection)
            try connection.shutdown(.write)
            let addresses = (try connection.localAddress, try connection.remoteAddress)
            connection.close()
            return (IOThread.current == nil, addresses.0, addresses.1)
        }
        let client = Task { () async throws -> (offPool: Bool, echoed: [UInt8]) in
            let stream = try await UnixStream.connect(to: address)
            try await stream.write(Array("off-pool echo".utf8))
            try stream.shutdown(.write)
            let echoed = try await readToEnd(stream)
            stream.close()
            return (IOThread.current == nil, echoed)
        }
        let clientSide = try await value(of: client) { listener.close() }
        let serverSide = try await value(of: server) { listener.close() }
        #expect(clientSide.echoed == Array("off-pool echo".utf8))
        #expect(clientSide.offPool && serverSide.offPool)
        #expect(serverSide.local == address, "an accepted stream's local address is the listener's")
        #expect(serverSide.remote == nil, "the client is unnamed")
        listener.close()
    }

    @Test func abstractNamespaceRoundTrip() async throws {
        let address = try UnixSocketAddress(abstract: "swift-iopool-tests.\(getpid()).\(UInt64.random(in: 0...UInt64.max))")
        #expect(address.description == "@\(address.abstractName!)")
        #expect(address.path == nil)
        let listener = try UnixListener.bind(address)
        #expect(try listener.localAddress == address)

        async let accepted = listener.accept()
        let client = try await UnixStream.connect(to: address)
        let server = try await accepted
        #expect(try client.remoteAddress == address)
        #expect(try server.localAddress == address)

        let roundTrip = try await value(of: Task { () async throws -> ([UInt8], [UInt8]) in
            try await client.write(Array("ping".utf8))
            let request = try await readExactly(server, 4)
            try await server.write(Array("pong".utf8))
            return (request, try await readExactly(client, 4))
        }) { client.close(); server.close() }
        #expect(roundTrip.0 == Array("ping".utf8))
        #expect(roundTrip.1 == Array("pong".utf8))
        client.close()
        server.close()

        // No file: closing the listener frees the name at once, and binding it again works.
        listener.close()
        let again = try UnixListener.bind(address)
        again.close()
    }

    // Both ends of a socketpair write 4 MiB and read the other's 4 MiB at the same time (one end on
    // an IOThreadPool, the other off-pool): neither direction may wait on the other.
    @Test func socketPairFourMiBBothWaysConcurrently() async throws {
        let size = 4 << 20
        let (left, right) = try UnixStream.pair()
        #expect(try left.localAddress == nil)
        #expect(try left.remoteAddress == nil)
        let toRight = pattern(count: size, seed: 0)
        let toLeft = pattern(count: size, seed: 97)
        let pool = try IOThreadPool(configuration: .init(threadCount: 1))

        let leftSide = try pool.spawn { () async throws -> Int in
            try await exchange(left, sending: toRight, expecting: toLeft)
        }
        let rightSide = Task { () async throws -> Int in
            try await exchange(right, sending: toLeft, expecting: toRight)
        }
        #expect(try await value(of: rightSide) { left.close(); right.close() } == size)
        #expect(try await value(of: leftSide) { left.close(); right.close() } == size)
        left.close()
        right.close()
        await pool.shutdown()
    }

    // MSG_NOSIGNAL: writing to a closed peer throws EPIPE instead of killing the process.
    @Test func writeToAClosedPeerThrowsEPIPE() async throws {
        let (left, right) = try UnixStream.pair()
        right.close()
        #expect(await outcome { try await left.write(Array("anyone?".utf8)) } == "IOError EPIPE write")
        #expect(await outcome { try await left.read() } == "returned 0 bytes")
        left.close()
    }

    // MARK: The socket file

    @Test func bindToAnExistingPathFailsWithEADDRINUSEAndLeavesTheFile() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }

        // A socket file left by a closed listener.
        let address = try directory.address("stale.sock")
        try UnixListener.bind(address).close()
        #expect(fileType(address.path!) == S_IFSOCK, "close() must not remove the socket file")
        let error = bindError(address)
        #expect(error?.errno == .addressInUse, "\(String(describing: error))")
        #expect(error?.operation == "bind to \(address.path!)", "\(String(describing: error))")
        #expect(fileType(address.path!) == S_IFSOCK)

        // A regular file.
        let file = try directory.address("regular")
        try directory.createRegularFile("regular")
        #expect(bindError(file)?.errno == .addressInUse)
        #expect(fileType(file.path!) == S_IFREG)
    }

    @Test func removingExistingFileUnlinksAStaleSocketButRefusesARegularFile() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }

        // Nothing there: the option changes nothing.
        let fresh = try directory.address("fresh.sock")
        try UnixListener.bind(fresh, removingExistingFile: true).close()

        // A stale socket file: removed, and the new listener serves.
        let address = try directory.address("stale.sock")
        try UnixListener.bind(address).close()
        let listener = try UnixListener.bind(address, removingExistingFile: true)
        async let accepted = listener.accept()
        let client = try await UnixStream.connect(to: address)
        let server = try await accepted
        try await client.write(Array("served".utf8))
        #expect(try await value(of: Task { try await readExactly(server, 6) }) { server.close() } == Array("served".utf8))
        client.close()
        server.close()
        listener.close()

        // A regular file, a directory: never removed.
        let file = try directory.address("regular")
        try directory.createRegularFile("regular")
        let fileError = bindError(file, removingExistingFile: true)
        #expect(fileError?.errno == .addressInUse, "\(String(describing: fileError))")
        #expect(fileError?.operation == "bind to \(file.path!)")
        #expect(fileError?.detail?.contains("not a socket") == true, "\(String(describing: fileError))")
        #expect(fileType(file.path!) == S_IFREG)

        let subdirectory = try directory.address("subdirectory")
        #expect(mkdir(subdirectory.path!, 0o700) == 0)
        #expect(bindError(subdirectory, removingExistingFile: true)?.errno == .addressInUse)
        #expect(fileType(subdirectory.path!) == S_IFDIR)
    }

    // MARK: Addresses

    @Test func addressValidation() throws {
        let limit = UnixSocketAddress.maxPathLength
        #expect(limit == 107)
        #expect(UnixSocketAddress.maxAbstractNameLength == 107)

        let longest = "/" + String(repeating: "p", count: limit - 1)
        #expect(try UnixSocketAddress(path: longest).path == longest)
        #expect(pathError(longest + "p")?.reason.contains("108 bytes long") == true)
        #expect(pathError("")?.reason == "path is empty")
        let withNUL = pathError("/tmp/a\0b")
        #expect(withNUL?.reason == "path contains a NUL byte at offset 6", "\(String(describing: withNUL))")
        #expect(withNUL?.input == "/tmp/a\0b")
        // Length is counted in UTF-8 bytes: 54 two-byte characters are 108 bytes.
        #expect(pathError(String(repeating: "é", count: 54)) != nil)

        let name = String(repeating: "n", count: limit)
        #expect(try UnixSocketAddress(abstract: name).abstractName == name)
        #expect(abstractNameError(name + "n")?.reason.contains("108 bytes long") == true)
        #expect(abstractNameError("")?.reason == "abstract name is empty")
        #expect(abstractNameError("a\0")?.reason == "abstract name contains a NUL byte at offset 1")

        let path = try UnixSocketAddress(path: "relative.sock")
        let abstract = try UnixSocketAddress(abstract: "relative.sock")
        #expect(path.description == "relative.sock")
        #expect(abstract.description == "@relative.sock")
        #expect(path.abstractName == nil)
        #expect(path != abstract)
        #expect(Set([path, abstract, try UnixSocketAddress(path: "relative.sock")]).count == 2)
    }

    // The longest path and the longest abstract name go through the kernel and come back equal.
    @Test func longestAddressesRoundTripThroughTheKernel() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }
        let padding = UnixSocketAddress.maxPathLength - directory.path.utf8.count - 1
        let longestPath = try directory.address(String(repeating: "s", count: padding))
        #expect(longestPath.path!.utf8.count == UnixSocketAddress.maxPathLength)
        let prefix = "swift-iopool-tests.\(getpid())."
        let longestName = try UnixSocketAddress(
            abstract: prefix + String(repeating: "a", count: UnixSocketAddress.maxAbstractNameLength - prefix.utf8.count))

        for address in [longestPath, longestName] {
            let listener = try UnixListener.bind(address)
            #expect(try listener.localAddress == address)
            let client = try await UnixStream.connect(to: address)
            #expect(try client.remoteAddress == address)
            client.close()
            listener.close()
        }
    }

    // MARK: Cancellation and close

    @Test func cancellingAPendingReadThrowsCancellationError() async throws {
        // On an IOThreadPool thread.
        do {
            let pool = try IOThreadPool(configuration: .init(threadCount: 1))
            let thread = pool.threads[0]
            let (client, server) = try UnixStream.pair()
            let reader = try thread.spawn { () async throws -> [UInt8] in try await server.read() }
            // A task spawned later on the same thread runs after the reader's first job, which ends
            // with the read suspended: the cancellation hits a pending read.
            await (try thread.spawn {}).value
            reader.cancel()
            let outcome = await withTaskCancellationHandler { await reader.result } onCancel: { server.close() }
            #expect(isCancellation(outcome), "\(outcome)")

            // The stream still works, on its thread and off-pool.
            try await client.write(Array("after cancel".utf8))
            let again = try await value(of: try thread.spawn { try await readExactly(server, 12) }) { server.close() }
            #expect(again == Array("after cancel".utf8))
            try await client.write(Array("and again".utf8))
            #expect(try await value(of: Task { try await readExactly(server, 9) }) { server.close() } == Array("and again".utf8))
            client.close()
            server.close()
            await pool.shutdown()
        }

        // Off-pool: a plain Task (the stream registers with a thread of the default pool).
        do {
            let (client, server) = try UnixStream.pair()
            let reader = Task { try await server.read() }
            try await waitUntilPending(server.handle)  // the cancellation hits a read that waits
            reader.cancel()
            let outcome = await withTaskCancellationHandler { await reader.result } onCancel: { server.close() }
            #expect(isCancellation(outcome), "\(outcome)")

            try await client.write(Array("after cancel".utf8))
            #expect(try await value(of: Task { try await readExactly(server, 12) }) { server.close() } == Array("after cancel".utf8))
            client.close()
            server.close()
        }
    }

    @Test func closeFailsAPendingReadWithEBADF() async throws {
        // On an IOThreadPool thread, closed from another task.
        do {
            let pool = try IOThreadPool(configuration: .init(threadCount: 1))
            let thread = pool.threads[0]
            let (client, server) = try UnixStream.pair()
            let reader = try thread.spawn { () async throws -> [UInt8] in try await server.read() }
            await (try thread.spawn {}).value  // the read is pending (see the cancellation test)
            await Task { server.close() }.value
            let outcome = await withTaskCancellationHandler { await reader.result } onCancel: { reader.cancel() }
            #expect(ioErrno(outcome) == .badFileDescriptor, "\(outcome)")
            await expectEveryOperationFailsWithEBADF(server)
            client.close()
            await pool.shutdown()
        }

        // Off-pool.
        do {
            let (client, server) = try UnixStream.pair()
            let reader = Task { try await server.read() }
            try await waitUntilPending(server.handle)
            await Task { server.close() }.value
            let outcome = await withTaskCancellationHandler { await reader.result } onCancel: { reader.cancel() }
            #expect(ioErrno(outcome) == .badFileDescriptor, "\(outcome)")
            await expectEveryOperationFailsWithEBADF(server)
            client.close()
        }

        // A pending accept, too.
        do {
            let directory = try TemporaryDirectory()
            defer { directory.remove() }
            let listener = try UnixListener.bind(try directory.address("closed.sock"))
            let acceptor = Task { try await listener.accept() }
            try await waitUntilPending(listener.handle)
            listener.close()
            let outcome = await withTaskCancellationHandler { await acceptor.result } onCancel: { acceptor.cancel() }
            #expect(ioErrno(outcome) == .badFileDescriptor, "\(outcome)")
        }
    }

    // MARK: Connect errors

    @Test func connectToAMissingPathOrAStaleSocketFails() async throws {
        let directory = try TemporaryDirectory()
        defer { directory.remove() }

        let missing = try directory.address("missing.sock")
        let missingOutcome = await outcome { _ = try await UnixStream.connect(to: missing) }
        #expect(missingOutcome == "IOError ENOENT connect to \(missing.path!)")

        let stale = try directory.address("stale.sock")
        try UnixListener.bind(stale).close()
        let staleOutcome = await outcome { _ = try await UnixStream.connect(to: stale) }
        #expect(staleOutcome == "IOError ECONNREFUSED connect to \(stale.path!)")

        let unbound = try UnixSocketAddress(abstract: "swift-iopool-tests.\(getpid()).unbound.\(UInt64.random(in: 0...UInt64.max))")
        let unboundOutcome = await outcome { _ = try await UnixStream.connect(to: unbound) }
        #expect(unboundOutcome == "IOError ECONNREFUSED connect to \(unbound)")
    }
}

// MARK: - Helpers

/// A fresh directory from `mkdtemp`, removed with everything in it by ``remove()``.
private struct TemporaryDirectory {
    let path: String

    init() throws {
        var template = Array("/tmp/iopool-unix-XXXXXX".utf8CString)
        let created = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        guard let created else { throw TestFailure("mkdtemp failed: errno \(errno)") }
        path = String(cString: created)
    }

    func address(_ name: String) throws -> UnixSocketAddress {
        try UnixSocketAddress(path: "\(path)/\(name)")
    }

    func createRegularFile(_ name: String) throws {
        let fd = open("\(path)/\(name)", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TestFailure("creating \(path)/\(name) failed: errno \(errno)") }
        _ = write(fd, "not a socket", 12)
        close(fd)
    }

    /// Removes the files and empty directories in the directory, then the directory.
    func remove() {
        if let stream = opendir(path) {
            while let entry = readdir(stream) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name == "." || name == ".." { continue }
                if unlink("\(path)/\(name)") != 0 { rmdir("\(path)/\(name)") }
            }
            closedir(stream)
        }
        if rmdir(path) != 0 { Issue.record("could not remove \(path): errno \(errno)") }
    }
}

/// The `S_IFMT` bits of the file at `path` (not following a symlink), or nil if there is none.
private func fileType(_ path: String) -> mode_t? {
    var info = stat()
    guard lstat(path, &info) == 0 else { return nil }
    return info.st_mode & S_IFMT
}

private func bindError(_ address: UnixSocketAddress, removingExistingFile: Bool = false) -> IOError? {
    do {
        try UnixListener.bind(address, removingExistingFile: removingExistingFile).close()
        Issue.record("bind to \(address) succeeded")
        return nil
    } catch {
        return error
    }
}

private func pathError(_ path: String) -> SocketAddressError? {
    do {
        Issue.record("path \(try UnixSocketAddress(path: path)) was accepted")
        return nil
    } catch {
        return error
    }
}

private func abstractNameError(_ name: String) -> SocketAddressError? {
    do {
        Issue.record("abstract name \(try UnixSocketAddress(abstract: name)) was accepted")
        return nil
    } catch {
        return error
    }
}

/// Writes `data` and half-closes while reading the peer's bytes to end of stream, checking each
/// against `expected`; returns the number of bytes read.
private func exchange(_ stream: UnixStream, sending data: [UInt8], expecting expected: [UInt8]) async throws -> Int {
    async let written: Void = {
        try await stream.write(data)
        try stream.shutdown(.write)
    }()
    let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 1)
    defer { chunk.deallocate() }
    var offset = 0
    while true {
        let count = try await stream.read(into: chunk)
        if count == 0 { break }
        guard offset + count <= expected.count else { throw TestFailure("received more than was sent") }
        let same = expected.withUnsafeBytes { memcmp($0.baseAddress! + offset, chunk.baseAddress!, count) == 0 }
        guard same else { throw TestFailure("bytes \(offset)..<\(offset + count) differ") }
        offset += count
    }
    try await written
    return offset
}

/// Bytes that do not repeat with any power-of-two period (251 is prime); `seed` shifts them.
private func pattern(count: Int, seed: Int) -> [UInt8] {
    let period = (0..<251).map { UInt8(truncatingIfNeeded: ($0 + seed) % 251) }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(count + period.count)
    while bytes.count < count { bytes += period }  // whole periods: fast in debug builds too
    return Array(bytes[..<count])
}

/// After `close()`: every operation on `stream` throws `IOError` with `EBADF`.
private func expectEveryOperationFailsWithEBADF(_ stream: UnixStream) async {
    #expect(await outcome { try await stream.read() } == "IOError EBADF read")
    #expect(await outcome { try await stream.write(Array("x".utf8)) } == "IOError EBADF write")
    #expect(ioErrno(Result { try stream.shutdown(.write) }) == .badFileDescriptor)
    #expect(ioErrno(Result { try stream.localAddress }) == .badFileDescriptor)
    #expect(ioErrno(Result { try stream.remoteAddress }) == .badFileDescriptor)
}
