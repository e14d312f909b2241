// The async/await SwiftNIO echo server: NIOAsyncChannel, one child task per connection.
//
// This is how NIO recommends writing servers with structured concurrency (NIO's NIOTCPEchoServer
// example): the listening channel is an NIOAsyncChannel whose inbound stream yields the accepted
// connections; a discarding task group runs one child task per connection, which iterates the
// connection's inbound stream and writes each buffer to its outbound writer. The user code runs on
// Swift's global executor, not on the event loop: every read batch hops from the loop to the
// global pool, every write hops back. That is the cost swift-iopool exists to remove, so this
// server is the comparison for it.
//
// Half-close: the child channels allow remote half-closure, so the client's FIN ends the inbound
// stream (it does not close the channel). The child then writes an empty buffer through the
// channel and waits for its future: writes complete in order, and the writer hands each element
// to the event loop before `write` returns, so when it completes every echo has left NIO's
// pending-write queue. Only then does `executeThenClose` close the channel (a full close drops
// writes still queued).
//
// Shutdown: cancel the task running `serveAsyncEchoServer`. Cancellation ends the listening
// channel's inbound stream and every connection's, and `executeThenClose` closes each channel.

import NIOCore
import NIOPosix

/// The listening channel of the async echo server: it yields one NIOAsyncChannel per connection.
public typealias AsyncEchoListener = NIOAsyncChannel<NIOAsyncChannel<ByteBuffer, ByteBuffer>, Never>

/// Binds the async echo server; serve it with ``serveAsyncEchoServer(_:)``.
public func bindAsyncEchoServer(
    group: MultiThreadedEventLoopGroup, host: String, port: Int
) async throws -> AsyncEchoListener {
    try await EchoServerSocketOptions.apply(to: ServerBootstrap(group: group))
        .bind(host: host, port: port) { channel in
            channel.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                    wrappingChannelSynchronously: channel,
                    configuration: .init()
                )
            }
        }
}

/// Accepts connections until the listener closes or the calling task is cancelled; each
/// connection is echoed by a child task of a discarding task group (finished children are freed
/// at once). Returns once every connection task has finished.
public func serveAsyncEchoServer(_ listener: AsyncEchoListener) async throws {
    try await withThrowingDiscardingTaskGroup { group in
        try await listener.executeThenClose { connections in
            for try await connection in connections {
                group.addTask { await echo(connection) }
            }
        }
    }
}

/// Echoes one connection until the client half-closes, then closes it after the echoes are out.
/// A client that resets the connection ends it early; that is not the server's error.
private func echo(_ connection: NIOAsyncChannel<ByteBuffer, ByteBuffer>) async {
    do {
        try await connection.executeThenClose { inbound, outbound in
            for try await buffer in inbound {
                try await outbound.write(buffer)
            }
            // The client half-closed: wait until every echo is written (see the top of the file).
            try await connection.channel.writeAndFlush(ByteBuffer()).get()
        }
    } catch {
        // ECONNRESET, EPIPE, cancellation at shutdown: nothing to report to anyone.
    }
}
