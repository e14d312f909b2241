import HTTPTypes
@_spi(IOPoolSupport) import IOPool
import Logging

/// One connection's request loop, owned by the connection's task: reads heads, runs the responder
/// for one request at a time (so responses leave in request order, pipelined or not), and keeps
/// the bytes it read ahead for the next request.
///
/// Output is coalesced: a response goes into `output`, which is written when the connection is
/// about to wait for more input (or when it passes `flushThreshold`). So the 16 responses of 16
/// pipelined requests that arrived in one read leave in one write, and a lone request's response
/// leaves before its connection waits again, which is the same single write.
final class HTTPConnection {
    let stream: TCPStream
    let control: HTTPConnectionControl
    let configuration: HTTPServer.Configuration
    let responder: any HTTPResponder
    let registry: HTTPConnectionRegistry

    /// The configuration's timeouts in nanoseconds, converted once per connection:
    /// `Instant.advanced(by: Duration)` costs about 300 instructions of 128-bit arithmetic, and a
    /// request arms two or three waits.
    private let timeouts: (idle: UInt64, header: UInt64, body: UInt64, write: UInt64)

    // The connection's own state, used by its one task only (the body and the writer act for
    // it during a request, on the same task): `@exclusivity(unchecked)` drops the runtime's
    // dynamic exclusivity checks on these class properties (about 400 instructions per request
    // in the callgrind counts); the static checks of Swift 6 still apply.

    /// Input: bytes `start..<end` of `storage` are read and not yet consumed.
    @exclusivity(unchecked) private var storage: UnsafeMutableRawBufferPointer
    @exclusivity(unchecked) private(set) var start = 0
    @exclusivity(unchecked) private(set) var end = 0
    @exclusivity(unchecked) private var parser: HTTPRequestHeadParser

    /// Response bytes not yet written.
    @exclusivity(unchecked) var output: [UInt8] = []
    /// Over this, a response's bytes are written before the responder goes on.
    static let flushThreshold = 64 * 1024
    /// What the input buffer starts with; it grows up to the head limit for a large head.
    static let initialInputCapacity = 4096

    /// Set once the connection cannot carry another request (an I/O error, a response that could
    /// not be completed, a body left unread): the loop ends after the current response.
    @exclusivity(unchecked) var mustClose = false

    init(stream: TCPStream, control: HTTPConnectionControl, server: HTTPServer) {
        self.stream = stream
        self.control = control
        self.configuration = server.configuration
        self.responder = server.responder
        self.registry = server.registry
        self.parser = HTTPRequestHeadParser(limits: server.configuration.limits)
        let configuration = server.configuration
        self.timeouts = (
            Self.nanoseconds(configuration.idleTimeout), Self.nanoseconds(configuration.headerTimeout),
            Self.nanoseconds(configuration.bodyTimeout), Self.nanoseconds(configuration.writeTimeout))
        self.storage = .allocate(byteCount: Self.initialInputCapacity, alignment: 16)
        output.reserveCapacity(4096)
    }

    deinit {
        storage.deallocate()
    }

    /// `duration` in whole nanoseconds, at least 1 and at most about 146 years (so that adding
    /// it to the monotonic clock cannot overflow).
    static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 1 }
        let whole = UInt64(Swift.min(seconds, Int64(UInt64.max / 4 / 1_000_000_000)))
        return Swift.max(1, whole * 1_000_000_000 + UInt64(attoseconds / 1_000_000_000))
    }

    /// Now plus `nanoseconds`, on the clock the sweeper reads.
    func waitDeadline(after nanoseconds: UInt64) -> IOClock.Instant {
        IOClock.Instant(nanoseconds: IOClock.now.nanoseconds + nanoseconds)
    }

    var bufferedByteCount: Int { end - start }

    var buffered: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: storage[start..<end]) }

    func consume(_ count: Int) {
        start += count
        if start == end { (start, end) = (0, 0) }
    }

    // MARK: The request loop

    nonisolated(nonsending) func run() async {
        do {
            while let head = try await waitForRequest() {
                try await handle(head)
                if mustClose { break }
            }
            try await flush()
        } catch {
            // A peer that resets or goes away, a timeout that closed the socket, cancellation:
            // the connection is over and there is nobody to tell but the log.
            configuration.logger?.debug("http: connection ended", metadata: ["error": "\(error)"])
        }
    }

    /// The next request's head, or nil when the connection should end: the client closed it,
    /// kept it idle past the idle timeout, or the server is shutting down and it is between
    /// requests. A malformed or too-large head is answered here (400, 413, 414, 431, 501, 505; a
    /// head that takes too long, 408) and ends the connection too.
    private nonisolated(nonsending) func waitForRequest() async throws -> HTTPRequestHead? {
        var headDeadline: IOClock.Instant?
        while true {
            if bufferedByteCount > 0 {
                do {
                    if let (head, consumed) = try parser.parse(buffered) {
                        consume(consumed)
                        return head
                    }
                } catch {
                    try await answerAndClose(error.status, error.reason)
                    return nil
                }
            }
            // About to wait: what the earlier requests produced goes out first.
            try await flush()
            let isIdle = bufferedByteCount == 0
            if isIdle && registry.isDraining { return nil }
            makeRoom()
            let deadline: IOClock.Instant
            if isIdle {
                deadline = waitDeadline(after: timeouts.idle)
            } else {
                // A head that began in bytes read before this call (pipelined behind the last
                // request) has its deadline start here: no idle read saw its first byte.
                let head = headDeadline ?? waitDeadline(after: timeouts.header)
                headDeadline = head
                deadline = head
            }
            control.arm(isIdle ? .idle : .head, until: deadline)
            if isIdle && registry.isDraining {
                _ = control.disarm()
                return nil
            }
            let count: Int
            do {
                count = try await stream.read(into: UnsafeMutableRawBufferPointer(rebasing: storage[end...]))
            } catch {
                _ = control.disarm()
                throw error
            }
            if control.disarm() {
                if !isIdle { try await answerAndClose(.requestTimeout, "the request head took longer than \(configuration.headerTimeout)") }
                return nil
            }
            if count == 0 { return nil }  // the client closed; a partial head ends with it
            if isIdle { headDeadline = waitDeadline(after: timeouts.header) }
            end += count
        }
    }

    /// Makes the free space after `end` non-empty: moves the unconsumed bytes to the front, or
    /// grows the buffer when they fill it. What stays unconsumed is a head, or a chunk-size or
    /// trailer line, and the head parser and the chunked decoder refuse those over
    /// ``HTTPRequestLimits/maxHeaderBytes``, so the buffer never grows past about twice that.
    private func makeRoom() {
        if end < storage.count { return }
        if start > 0 {
            moveToFront()
            return
        }
        let grown = UnsafeMutableRawBufferPointer.allocate(byteCount: storage.count * 2, alignment: 16)
        grown.copyMemory(from: UnsafeRawBufferPointer(rebasing: storage[0..<end]))
        storage.deallocate()
        storage = grown
    }

    private func moveToFront() {
        let count = end - start
        if count > 0, start > 0 {
            UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]).copyMemory(from: buffered)
        }
        (start, end) = (0, count)
    }

    /// Reads more input for a request body: at least one byte, or 0 at end of file. Throws
    /// ``HTTPServerError/bodyTimedOut`` when the client sends nothing for the body timeout.
    nonisolated(nonsending) func readMoreBody() async throws -> Int {
        makeRoom()
        try await flush()  // a `100 Continue`, or a response streamed while the body arrives
        control.arm(.body, until: waitDeadline(after: timeouts.body))
        let count: Int
        do {
            count = try await stream.read(into: UnsafeMutableRawBufferPointer(rebasing: storage[end...]))
        } catch {
            _ = control.disarm()
            mustClose = true
            throw error
        }
        if control.disarm() {
            mustClose = true
            throw HTTPServerError.bodyTimedOut(configuration.bodyTimeout)
        }
        end += count
        return count
    }

    /// Writes what `output` holds. Throws ``HTTPServerError/writeTimedOut`` when the client takes
    /// nothing for the write timeout (the socket is then closed).
    nonisolated(nonsending) func flush() async throws {
        guard !output.isEmpty else { return }
        control.arm(.write, until: waitDeadline(after: timeouts.write))
        do {
            try await stream.write(output)  // borrows the array's storage: no copy
        } catch {
            mustClose = true
            if control.disarm() { throw HTTPServerError.writeTimedOut(configuration.writeTimeout) }
            throw error
        }
        if control.disarm() {
            mustClose = true
            throw HTTPServerError.writeTimedOut(configuration.writeTimeout)
        }
        output.removeAll(keepingCapacity: true)
    }

    // MARK: One request

    private nonisolated(nonsending) func handle(_ head: HTTPRequestHead) async throws {
        let body = HTTPRequestBody(connection: self, framing: head.framing, expectsContinue: head.expectsContinue)
        let writer = HTTPResponseWriter(
            connection: self, version: head.version, isHead: head.request.method == .head,
            keepAlive: head.keepAlive, body: body)
        do {
            try await responder.respond(to: head.request, body: body, writer: writer)
        } catch {
            if writer.hasStarted {
                // Half a response cannot be mended: the client sees the connection end.
                configuration.logger?.error(
                    "http: the responder failed after the response began; closing the connection",
                    metadata: ["error": "\(error)", "path": "\(head.request.path ?? "")"])
                mustClose = true
                try? await flush()
                return
            }
            if let (status, reason) = Self.clientFault(error) {
                // The request's own fault, surfaced through the body the responder read: the
                // client gets the status that says so, and the connection ends (the body's
                // framing is broken or unread, so the next request's start is unknown).
                mustClose = true
                writer.appendError(status, reason: reason)
            } else {
                configuration.logger?.error(
                    "http: the responder failed; answered 500", metadata: ["error": "\(error)", "path": "\(head.request.path ?? "")"])
                writer.appendError(.internalServerError, reason: nil)
            }
        }
        if !writer.hasStarted {
            configuration.logger?.error(
                "http: the responder returned without a response; answered 500", metadata: ["path": "\(head.request.path ?? "")"])
            writer.appendError(.internalServerError, reason: nil)
        } else if !writer.hasFinished {
            try await writer.finishForResponder()
        }
        if output.count >= Self.flushThreshold { try await flush() }
        if mustClose { return }
        // The rest of the body must be read before the next request's head: drain it, unless the
        // client is still waiting for `100 Continue` (it may never send the body; the response
        // said `Connection: close`).
        if !body.isComplete {
            if body.isAwaitingContinue {
                mustClose = true
            } else {
                try await body.discardRest()
            }
        }
    }

    /// The status for a body error that a responder let through: the client's fault, not a
    /// server failure (so not 500). Nil for every other error.
    static func clientFault(_ error: any Error) -> (HTTPResponse.Status, String)? {
        guard let error = error as? HTTPServerError else { return nil }
        switch error {
        case .invalidBody(let requestError): return (requestError.status, requestError.reason)
        case .bodyTimedOut(let timeout): return (.requestTimeout, "no body bytes arrived for \(timeout)")
        case .bodyIncomplete: return (.badRequest, "the connection ended before the body did")
        case .bodyTooLarge(let limit): return (.contentTooLarge, "the body is over the \(limit) bytes this resource takes")
        default: return nil
        }
    }

    /// Answers a request the server refuses itself, with the reason as a text body, and closes.
    private nonisolated(nonsending) func answerAndClose(_ status: HTTPResponse.Status, _ reason: String) async throws {
        mustClose = true
        HTTPResponseWriter.appendErrorResponse(status, reason: reason, version: .http1_1, to: &output)
        try await flush()
    }
}
