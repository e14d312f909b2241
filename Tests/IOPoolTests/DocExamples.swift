import Glibc
import IOPool

// The examples of the README and of the doc comments that no test runs as they stand, verbatim
// (`.ci/doc-examples.py` checks that every ```swift block of the docs appears, line for line, in
// a file under Tests/). Each is the body of a function that is compiled and never called: its
// parameters and stand-ins give the names the example assumes (a pool, a stream, the user's own
// functions). So an example that stops compiling breaks the test build, and one edited in the
// docs alone fails the check. Lines after an example (`_ = ...`) only keep its unused values
// from warning. Examples that a test runs live in their tests (ReadmeExampleTests, ...).

/// README "Example", and `IOThread`'s doc comment: an actor pinned to a thread.
actor ConnectionTable {
    let thread: IOThread
    init(thread: IOThread) { self.thread = thread }
    nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }
}

enum ReadmeExamples {
    static func runClient() async throws {
        let total = try await IOThreadPool.run(configuration: .init(threadCount: 2)) { pool in
            let stream = try await TCPStream.connect(to: SocketAddress("127.0.0.1:7000"))
            try await stream.write(Array("hello".utf8))
            try stream.shutdown(.write)
            var reply: [UInt8] = []
            while case let chunk = try await stream.read(), !chunk.isEmpty { reply += chunk }
            return reply.count
        }
        _ = total
    }

    static func timers(stream: TCPStream) async throws {
        let reply = try await withTimeout(.seconds(5)) { try await stream.read() }  // throws TimeoutError
        try await sleep(for: .milliseconds(10))
        try await Task.sleep(for: .milliseconds(10), clock: .io)
        for try await tick in intervals(every: .seconds(1)) { print(tick) }
        _ = reply
    }

    /// Also `IOThreadPool.listenOnEveryThread`'s doc comment.
    static func perThreadListeners(pool: IOThreadPool) throws {
        let listeners = try pool.listenOnEveryThread(SocketAddress("127.0.0.1:8080"))
        try pool.acceptOnEveryThread(listeners) { connection in
            _ = try? await copy(from: connection, to: connection)
            connection.close()
        }
    }

    /// The whole block: its declarations are local here (the retry test holds them at file scope).
    static func connectByName() async throws {
        struct ConnectGaveUp: Error, CustomStringConvertible {
            let target: String
            let attempts: Int
            let lastError: any Error
            var description: String { "gave up connecting to \(target) after \(attempts) attempts: \(lastError)" }
        }

        /// Connects by name (Happy Eyeballs over every address), each try bounded by `timeout`;
        /// retries with exponential backoff, at most `attempts` tries in all.
        func connectWithRetry(
            host: String, port: UInt16, attempts: Int = 5, timeout: Duration = .seconds(2)
        ) async throws -> TCPStream {
            var backoff = Duration.milliseconds(100)
            for attempt in 1...attempts {
                do {
                    return try await TCPStream.connect(host: host, port: port, timeout: timeout)
                } catch let error as NameResolutionError where !error.isTemporary {
                    throw error  // no such host: waiting will not make it exist
                } catch is CancellationError {
                    throw CancellationError()
                } catch where attempt < attempts {
                    try await sleep(for: backoff)  // throws CancellationError if the task is cancelled
                    backoff *= 2
                } catch {
                    throw ConnectGaveUp(target: "\(host):\(port)", attempts: attempt, lastError: error)
                }
            }
            preconditionFailure("attempts must be at least 1")
        }

        let stream = try await connectWithRetry(host: "localhost", port: 7000)
        _ = stream
    }

    static func spreadingAcceptLoop(pool: IOThreadPool, listener: TCPListener) async throws {
        let server = try pool.spawn {
            try await pool.withThrowingSpreadingDiscardingTaskGroup { group in
                for try await connection in listener.connections {  // ends after listener.close()
                    group.addTask {  // on the next thread, for the connection's whole life
                        defer { connection.close() }
                        _ = try? await copy(from: connection, to: connection)
                        try? connection.shutdown(.write)
                    }
                }
            }  // returns once the loop ended and every connection's child has finished
        }
        // ... later, to stop accepting:
        listener.close()
        try await server.value
    }
}

enum DocCommentExamples {
    static func ioError(stream: TCPStream, bytes: [UInt8]) async throws {
        do {
            try await stream.write(bytes)
        } catch let error as IOError where error.errno == .connectionReset {
            // the peer reset the connection
        }
    }

    static func ioThread(pool: IOThreadPool) throws {
        let thread = pool.next()
        let task = try thread.spawn {
            IOThread.current === thread  // true, before and after every await
        }
        _ = task
    }

    static func ioThreadPoolRun() async throws {
        let answer = try await IOThreadPool.run { pool in
            try pool.spawn { /* keeps run() waiting until it ends */ }
            return 42
        }
        _ = answer
    }

    // `TaskPool`'s doc comment: code that takes either pool.
    func serveOne<Pool: TaskPool>(on pool: Pool, _ connection: TCPStream) throws(IOPoolError) {
        try pool.spawn {
            _ = try? await copy(from: connection, to: connection)
            connection.close()
        }
    }

    static func workStealingPoolRun() async throws {
        let answer = try await WorkStealingPool.run { pool in
            try pool.spawn { /* keeps run() waiting until it ends */ }
            return 42
        }
        _ = answer
    }

    static func spreadingTaskGroup(pool: IOThreadPool, listener: TCPListener) async throws {
        @Sendable func handle(_ connection: TCPStream) async throws { connection.close() }
        try await pool.withThrowingSpreadingDiscardingTaskGroup { group in
            for try await connection in listener.connections {  // ends when the listener is closed
                group.addTask { try? await handle(connection) }
            }
        }
    }

    static func ioThreadPool() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 4))
        let listener = try TCPListener.bind(.loopbackIPv4(port: 0))
        try pool.spawn {
            try await pool.spawnAll(listener.connections) { connection in
                _ = try? await copy(from: connection, to: connection)
                connection.close()
            }
        }
        // ...
        await pool.shutdownGracefully()
    }

    static func bufferedReader(stream: TCPStream) async throws {
        let reader = BufferedReader(stream)
        while let line = try await reader.readLine(maxLength: 1024) {   // LF or CRLF
            print(line)
        }

        let header = try await reader.readExactly(4)                     // a length prefix
        let body = try await reader.readExactly(Int(header[0]))

        for try await line in reader.lines { print(line) }
        _ = body
    }

    static func bufferedWriter(stream: TCPStream) async throws {
        let writer = BufferedWriter(stream)
        try await writer.write("HTTP/1.1 200 OK\r\n".utf8)
        try await writer.write("content-length: 2\r\n\r\nok".utf8)
        try await writer.flush()                       // one write(2)
    }

    static func gatheredWrite(stream: TCPStream, header: [UInt8], payload: [UInt8]) async throws {
        try await stream.write(gathering: [header, payload])
    }

    static func resolver() async throws {
        do {
            _ = try await SocketAddress.resolve(host: "nowhere.invalid", port: 80)
        } catch let error as NameResolutionError {
            print(error)   // could not resolve "nowhere.invalid": Name or service not known (EAI_NONAME)
        }
    }

    static func socketAddresses() throws {
        let a = try SocketAddress("127.0.0.1:8080")
        let b = try SocketAddress("[::1]:8080")
        let c = try SocketAddress(host: "fe80::1%2", port: 443)   // link-local, scope id 2
        let d = SocketAddress.loopbackIPv4(port: 0)                 // let the kernel pick a port
        print(b)                                                     // "[::1]:8080"
        _ = (a, c, d)
    }

    static func ipv4Address() {
        let address = SocketAddress.ipv4(192, 168, 1, 10, port: 80)   // 192.168.1.10:80
        _ = address
    }

    static func socketActivation() throws {
        for socket in try SocketActivation.listenDescriptors() {
            let listener = try TCPListener(adopting: socket.fd)   // ListenStream=8080
            print("serving \(try listener.localAddress) from systemd (\(socket.name ?? "unnamed"))")
        }
    }

    static func rawSocketOption(stream: TCPStream) throws {
        let congestionControl = try stream.withUnsafeFileDescriptor { fd -> String in
            var name = [UInt8](repeating: 0, count: 16)
            var length = socklen_t(name.count)
            guard getsockopt(fd, CInt(IPPROTO_TCP), TCP_CONGESTION, &name, &length) == 0 else {
                throw IOError(errno: .init(rawValue: errno), operation: "getsockopt(TCP_CONGESTION)")
            }
            return String(decoding: name.prefix { $0 != 0 }, as: UTF8.self)   // "cubic"
        }
        _ = congestionControl
    }

    static func streamHalves(stream: TCPStream, pool: IOThreadPool, someSink: TCPStream) async throws {
        let (reader, writer) = stream.split()
        try pool.spawn { _ = try await copy(from: reader, to: someSink) }
        try await writer.write(Array("hello\n".utf8))
        writer.close()                         // half-close; the reader goes on
    }

    static func tcpListener() async throws {
        let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
        print("listening on \(try listener.localAddress)")
        for try await connection in listener.connections {
            spawn {
                _ = try? await copy(from: connection, to: connection)
                connection.close()
            }
        }
    }

    static func tcpStream() async throws {
        let stream = try await TCPStream.connect(to: SocketAddress("127.0.0.1:8080"))
        try await stream.write(Array("hello".utf8))
        try stream.shutdown(.write)            // half-close: the peer reads EOF
        let reply = try await stream.read()    // [] at EOF
        stream.close()
        _ = reply
    }

    static func udpReceiveBatch(socket: UDPSocket) async throws {
        func handle(_ bytes: UnsafeRawBufferPointer, from sender: SocketAddress) {}
        let batch = UDPReceiveBatch(capacity: 32, datagramSize: 2048)
        while true {
            let count = try await socket.receive(into: batch)
            for index in 0..<count {
                let datagram = batch[index]
                handle(datagram.bytes, from: datagram.sender)
            }
        }
    }

    static func udpReceiveBatchSpans(socket: UDPSocket, batch: UDPReceiveBatch) async throws {
        let count = try await socket.receive(into: batch)
        for index in 0..<count {
            let firstByte = batch[index].withBytes { $0.isEmpty ? nil : $0.unsafeLoad(as: UInt8.self) }
            if let firstByte { print("datagram \(index) starts with \(firstByte)") }
        }
    }

    static func udpSendBatch(socket: UDPSocket, replies: [(bytes: [UInt8], client: SocketAddress)]) async throws {
        let batch = UDPSendBatch(capacity: 32, datagramSize: 1500)
        for reply in replies { batch.append(reply.bytes, to: reply.client) }
        try await socket.send(batch)
        batch.removeAll()
    }

    static func multicastInterface(socket: UDPSocket, group: SocketAddress, group6: SocketAddress) throws {
        try socket.joinMulticastGroup(group, interface: .address(.loopbackIPv4(port: 0)))  // IPv4, by address
        try socket.joinMulticastGroup(group6, interface: try .named("eth0"))               // by index
    }

    static func multicastGroup() throws {
        let group = try SocketAddress("239.255.0.1:5000")
        let receiver = try UDPSocket.bind(group, reuseAddress: true)
        try receiver.joinMulticastGroup(group, interface: .address(try SocketAddress("192.168.1.10:0")))
    }

    static func udpSocket() async throws {
        let server = try UDPSocket.bind(SocketAddress("127.0.0.1:5353"))
        let (request, sender, _) = try await server.receive()
        try await server.send(request, to: sender)          // echo it back

        let client = try UDPSocket.unbound()                  // the kernel picks a port on first send
        try client.connect(to: SocketAddress("127.0.0.1:5353"))
        try await client.send(Array("ping".utf8))
        let reply = try await client.receive()
        _ = reply
    }

    static func unixDatagramSocket() async throws {
        let server = try UnixDatagramSocket.bind(UnixSocketAddress(path: "/run/app.dgram"), removingExistingFile: true)
        let client = try UnixDatagramSocket.bind(UnixSocketAddress(abstract: "app-client"))
        try await client.send(Array("ping".utf8), to: server.localAddress!)
        let (request, sender, _) = try await server.receive()
        if let sender { try await server.send(request, to: sender) }   // nil: an unnamed sender

        let (a, b) = try UnixDatagramSocket.pair()                       // connected, no address
        _ = (a, b)
    }

    static func unixListener() async throws {
        let address = try UnixSocketAddress(path: "/run/myapp.sock")
        let listener = try UnixListener.bind(address, removingExistingFile: true)
        for try await connection in listener.connections {
            spawn {
                _ = try? await copy(from: connection, to: connection)
                connection.close()
            }
        }
    }

    static func unixSocketAddress() throws {
        let file = try UnixSocketAddress(path: "/run/myapp.sock")
        let abstract = try UnixSocketAddress(abstract: "myapp")   // no file; gone with the last socket
        print(abstract)                                           // "@myapp"
        _ = file
    }

    static func unixStream() async throws {
        let stream = try await UnixStream.connect(to: UnixSocketAddress(path: "/run/myapp.sock"))
        try await stream.write(Array("hello".utf8))
        try stream.shutdown(.write)            // half-close: the peer reads EOF
        let reply = try await stream.read()    // [] at EOF
        stream.close()

        let (a, b) = try UnixStream.pair()     // connected, no address (socketpair(2))
        _ = (reply, a, b)
    }

    static func ioClock() async throws {
        try await Task.sleep(for: .milliseconds(5), clock: IOClock())
        try await IOClock().sleep(until: .now.advanced(by: .seconds(1)))
    }

    static func intervalsExample() async throws {
        for try await tick in intervals(every: .seconds(1)) { print(tick) }
    }

    static func timeoutAroundLocalState(stream: TCPStream) async throws {
        var lines = BufferedReader(stream).lines.makeAsyncIterator()  // a local, non-Sendable iterator
        while let line = try await withTimeout(.seconds(30), operation: { try await lines.next() }) {
            print(line)
        }
    }

    static func timeout(stream: TCPStream) async throws {
        let bytes = try await withTimeout(.seconds(5)) { try await stream.read() }
        _ = bytes
    }

    static func deadline(reader: BufferedReader<TCPStream>, length: Int) async throws {
        let deadline = IOClock.now.advanced(by: .seconds(5))
        let header = try await withDeadline(deadline) { try await reader.readLine() }
        let body = try await withDeadline(deadline) { try await reader.readExactly(length) }
        _ = (header, body)
    }

    static func blockingSection(path: String) throws {
        @Sendable func legacyBlockingRead(_ path: String) throws -> [UInt8] { [] }
        let pool = try WorkStealingPool()
        try pool.spawn {
            let contents = try await blocking { try legacyBlockingRead(path) }
            return contents.count
        }
    }

    static func workStealingPool() async throws {
        @Sendable func expensiveSynchronousHash() -> Int { 0 }
        let pool = try WorkStealingPool(configuration: .init(threadCount: 4))
        let task = try pool.spawn {
            let digest = try await blocking { expensiveSynchronousHash() }  // the pool keeps running
            return digest
        }
        print(try await task.value)
        await pool.shutdownGracefully()
    }
}

/// README "Existing async code on the pool" and `WorkStealingPool.unsafeInstallAsGlobalExecutor`'s
/// doc comment (never called here: installing is irreversible; GlobalExecutorTests run it in exit
/// tests, each a process of its own).
enum GlobalExecutorExamples {
    static func readme() throws {
        // First thing in `main` (main.swift's top level, or an `@main` type's `main()`):
        let pool = try WorkStealingPool.unsafeInstallAsGlobalExecutor()  // throws if called twice
        Task { /* on `pool`, with its reactor, timers and blocking { } */ }
        _ = pool
    }

    static func docComment() throws {
        // First thing in `main` (main.swift's top level, or an `@main` type's `main()`):
        let pool = try WorkStealingPool.unsafeInstallAsGlobalExecutor()
        Task { /* runs on `pool` */ }
        _ = pool
    }
}
