import Synchronization

// What a TCP listener and a Unix-domain listener share: the accept loop's front (the back-off
// count, `connections` ending on a local close) and closing, written once. `TCPListener` and
// `UnixListener` are final subclasses that add binding and the bound address; the accept(2) loop
// itself, its error classification and its back-off are the socket core's
// (`SocketHandle.acceptConnection`, `TCPListener.acceptErrorAction`).
//
// A base class rather than a protocol for the reasons StreamSocket.swift gives; generic over the
// stream type accepted, so that `accept()` returns a `TCPStream` from a `TCPListener` and a
// `UnixStream` from a `UnixListener`. Accepting is once per connection, never per message.
// `@unchecked Sendable` as StreamSocket: only `let`s of Sendable types.

/// A listening stream socket: the accepting and closing that ``TCPListener`` and ``UnixListener``
/// share, each connection accepted as a `Stream` (``TCPStream``, ``UnixStream``).
///
/// Running out of file descriptors (`EMFILE`, `ENFILE`) or kernel memory (`ENOBUFS`, `ENOMEM`) while
/// accepting does not fail ``accept()`` and does not spin: it waits ``TCPListener/acceptBackoff``
/// and tries again (counted in ``acceptBackoffCount``). Errors that concern one queued connection
/// skip that connection (see ``TCPListener``).
public class StreamListener<Stream: StreamSocket>: @unchecked Sendable {
    let handle: SocketHandle
    private let backoffs = Atomic<Int>(0)

    init(handle: SocketHandle) {
        self.handle = handle
    }

    deinit {
        handle.close()
    }
}

extension StreamListener {
    /// Waits for the next connection.
    ///
    /// Several tasks may accept on one listener at once (several accept loops): they take turns
    /// in FIFO order, and each connection goes to exactly one of them.
    ///
    /// - Throws: `IOError` with `EBADF` ("the socket is closed", operation `accept`) if the listener
    ///   is closed, before or while this waits (``connections`` ends instead); `CancellationError`
    ///   if the task is cancelled while waiting; `IOError` with `ECANCELED` if the loop it waits on
    ///   shut down; other accept(2) errors that concern the listener itself.
    nonisolated(nonsending)
    public func accept() async throws -> Stream {
        Stream(handle: try await handle.acceptConnection { backoffs.wrappingAdd(1, ordering: .relaxed) })
    }

    /// ``accept()`` for ``connections``: `nil` instead of the error when the accept failed because
    /// the listener was closed locally (every failure after a local close is a consequence of it:
    /// `EBADF`, or the waiter failed by the close). Cancellation is still thrown.
    nonisolated(nonsending)
    func acceptUnlessClosed() async throws -> Stream? {
        do {
            return try await accept()
        } catch is CancellationError {
            throw CancellationError()
        } catch where handle.isClosed {
            return nil
        }
    }

    /// How many times ``accept()`` backed off because descriptors or memory ran out.
    public var acceptBackoffCount: Int { backoffs.load(ordering: .relaxed) }

    /// The incoming connections, as an `AsyncSequence`: each iteration is an ``accept()``.
    ///
    /// The sequence **ends** (`next()` returns `nil`) once the listener is closed locally with
    /// ``close()``, also when that happens while a `next()` is suspended waiting for a connection:
    /// so `for try await connection in listener.connections { ... }` simply finishes on a
    /// graceful shutdown, with no error to catch. A connection accepted before the close was seen
    /// is still returned. Any other failure of the accept is thrown (`IOError` naming `accept`);
    /// a cancelled task's `next()` throws `CancellationError`, even if the listener is closed too.
    public var connections: Connections { Connections(listener: self) }

    /// An `AsyncSequence` of accepted connections.
    public struct Connections: AsyncSequence, Sendable {
        let listener: StreamListener

        /// Makes an iterator whose every `next()` is an ``StreamListener/accept()``.
        public func makeAsyncIterator() -> Iterator { Iterator(listener: listener) }

        /// Accepts one connection per `next()`; returns `nil` once the listener is closed.
        public struct Iterator: AsyncIteratorProtocol {
            let listener: StreamListener

            /// The next accepted connection, or `nil` once the listener is closed.
            nonisolated(nonsending)
            public mutating func next() async throws -> Stream? {
                try await listener.acceptUnlessClosed()
            }

            /// The next accepted connection, or `nil` once the listener is closed.
            public mutating func next(isolation actor: isolated (any Actor)?) async throws -> Stream? {
                try await listener.acceptUnlessClosed()
            }
        }
    }

    /// Stops listening. A pending ``accept()``, and every later one, throws `IOError` with `EBADF`
    /// ("the socket is closed", operation `accept`); ``connections`` ends instead (returns `nil`).
    /// Idempotent; any thread.
    public func close() {
        handle.close()
    }
}
