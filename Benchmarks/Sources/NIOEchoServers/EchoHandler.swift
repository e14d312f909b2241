// The classic SwiftNIO echo server: a ChannelInboundHandler on the event loop, no async/await.
//
// Per read batch: every `channelRead` writes the buffer back unchanged (no copy, no promise), and
// `channelReadComplete` flushes once, so a batch of reads costs one `writev`. This is the shape of
// NIO's own NIOEchoServer example, plus half-close:
//
// - The child channels allow remote half-closure, so a client's FIN arrives as the user event
//   `ChannelEvent.inputClosed` instead of closing the channel.
// - On it, the handler writes an empty buffer and flushes. Writes complete in order, so that
//   write's future completes once every earlier echo has left NIO's pending-write queue. Only
//   then does it close the channel. Closing at once would fail the writes still queued (a full
//   close drops them), and `close(mode: .output)` does not help: with input already shut, NIO
//   escalates it to a full close.
// - Errors (ECONNRESET from a client that went away) close the channel.
//
// Thread-safety: a handler instance belongs to one channel's pipeline and is only called on that
// channel's event loop (NIO's contract), so it needs no locks and is not Sendable.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import NIOCore
import NIOPosix

/// Writes every inbound buffer back; on the client's half-close, closes after the echoes are out.
public final class EchoHandler: ChannelInboundHandler {
    public typealias InboundIn = ByteBuffer
    public typealias OutboundOut = ByteBuffer

    public init() {}

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        // `data` already wraps a ByteBuffer: pass it back without unwrapping.
        context.write(data, promise: nil)
    }

    public func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    public func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let event = event as? ChannelEvent, event == .inputClosed else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        let channel = context.channel
        let barrier = channel.allocator.buffer(capacity: 0)
        context.writeAndFlush(Self.wrapOutboundOut(barrier)).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    public func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Options both NIO servers set on their listening and accepted sockets.
///
/// They match `iopool echo-server`: `SO_REUSEADDR`, a backlog of `SOMAXCONN` (TCPListener's
/// default), `TCP_NODELAY`, half-close allowed. `maxMessagesPerRead` stays at NIO's
/// default (4 reads per readiness event).
public enum EchoServerSocketOptions {
    /// TCPListener.defaultBacklog in swift-iopool is SOMAXCONN; Linux caps it at net.core.somaxconn.
    public static let backlog = Int32(SOMAXCONN)

    /// Applies the server-socket and child-socket options to `bootstrap`.
    public static func apply(to bootstrap: ServerBootstrap) -> ServerBootstrap {
        bootstrap
            .serverChannelOption(.backlog, value: backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.allowRemoteHalfClosure, value: true)
    }
}

/// The handler echo server, bound and accepting: `EchoHandler` on every accepted channel.
///
/// Returns the listening channel; close it to stop accepting (its `closeFuture` completes).
public func startHandlerEchoServer(
    group: MultiThreadedEventLoopGroup, host: String, port: Int
) async throws -> any Channel {
    let bootstrap = EchoServerSocketOptions.apply(to: ServerBootstrap(group: group))
        .childChannelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                try channel.pipeline.syncOperations.addHandler(EchoHandler())
            }
        }
    return try await bootstrap.bind(host: host, port: port).get()
}
