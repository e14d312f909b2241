import IOPool
import Testing

// The DocC article "Building a line-protocol server" (Sources/IOPool/IOPool.docc), its code
// verbatim (`.ci/doc-examples.py` checks that), run: the steps in order, then a second client
// that checks the replies the article's client prints.

/// The server's state. Pinned to one pool thread: its methods run on that thread's loop.
actor KeyValueStore {
    let thread: IOThread
    private var values: [String: String] = [:]

    init(thread: IOThread) { self.thread = thread }
    nonisolated var unownedExecutor: UnownedSerialExecutor { thread.asUnownedSerialExecutor() }

    /// One request line in, one reply line out.
    func reply(to request: String) -> String {
        let words = request.split(separator: " ", maxSplits: 2).map(String.init)
        switch (words.first, words.count) {
        case ("SET", 3):
            values[words[1]] = words[2]
            return "OK"
        case ("GET", 2):
            return values[words[1]] ?? "NOT_FOUND"
        default:
            return "ERROR unknown request: \(request)"
        }
    }
}

/// Serves one client until it closes its side, or sends a line over 4,096 bytes, or resets.
func serveKeyValue(_ connection: TCPStream, store: KeyValueStore) async {
    defer { connection.close() }
    let reader = BufferedReader(connection)
    let writer = BufferedWriter(connection)
    do {
        while let request = try await reader.readLine(maxLength: 4096) {
            let reply = await store.reply(to: request)
            try await writer.write((reply + "\n").utf8)
            try await writer.flush()
        }
    } catch {
        // IOError: a reset, or a line over 4,096 bytes. The connection closes; the others go on.
    }
}

@Suite(.timeLimit(.minutes(1)))
struct LineProtocolTutorialTests {
    @Test func theArticlesServerAnswersEveryRequestAndShutsDownGracefully() async throws {
        let pool = try IOThreadPool(configuration: .init(threadCount: 4))
        let store = KeyValueStore(thread: pool.next())
        let listener = try TCPListener.bind(SocketAddress("127.0.0.1:0"))
        print("listening on \(try listener.localAddress)")
        let server = try pool.spawn {
            try await pool.withThrowingSpreadingDiscardingTaskGroup { group in
                for try await connection in listener.connections {  // ends after listener.close()
                    group.addTask { await serveKeyValue(connection, store: store) }
                }
            }
        }

        let client = try await TCPStream.connect(to: try listener.localAddress)
        let replies = BufferedReader(client)
        for request in ["SET greeting hello", "GET greeting", "GET missing"] {
            try await client.write(Array((request + "\n").utf8))
            print(try await replies.readLine() ?? "(closed)")  // OK, hello, NOT_FOUND
        }
        client.close()

        // What the article's client printed, checked; and the store is shared between clients.
        let checker = try await TCPStream.connect(to: try listener.localAddress)
        let checkerReplies = BufferedReader(checker)
        var got: [String?] = []
        for request in ["GET greeting", "SET greeting hi", "GET greeting", "NOPE", "GET missing"] {
            try await checker.write(Array((request + "\r\n").utf8))
            got.append(try await checkerReplies.readLine())
        }
        #expect(got == ["hello", "OK", "hi", "ERROR unknown request: NOPE", "NOT_FOUND"])
        // A line over the limit gets no reply: the server closes that connection (an end of
        // stream here, or a reset if it closed with bytes unread).
        try await checker.write(Array(repeating: UInt8(ascii: "x"), count: 5000) + [10])
        let afterLongLine = try? await checkerReplies.readLine()
        #expect(afterLongLine == nil)
        checker.close()

        listener.close()
        try await server.value  // every connection has finished
        await pool.shutdownGracefully()
    }
}
