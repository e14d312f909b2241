import CIOPoolShims
import Glibc
import SystemPackage

/// Buffers for receiving many datagrams with one system call: ``UDPSocket/receive(into:)-(UDPReceiveBatch)``
/// fills them with `recvmmsg(2)`.
///
/// Why: a busy UDP server pays, per datagram, one system call and one pass through the socket's
/// readiness bookkeeping; a batch pays them once for up to ``capacity`` datagrams
/// (BENCHMARKS.md, "UDP", has the numbers). The memory is allocated once, in `init`, and reused by
/// every receive; the datagrams of one receive stay valid until the next one.
///
/// ```swift
/// let batch = UDPReceiveBatch(capacity: 32, datagramSize: 2048)
/// while true {
///     let count = try await socket.receive(into: batch)
///     for index in 0..<count {
///         let datagram = batch[index]
///         handle(datagram.bytes, from: datagram.sender)
///     }
/// }
/// ```
///
/// Not `Sendable`: one task receives into a batch at a time.
public final class UDPReceiveBatch {
    /// One received datagram: its bytes (inside the batch's memory, valid until the next receive),
    /// its sender, and whether it was longer than ``UDPReceiveBatch/datagramSize`` (the rest was
    /// discarded by the kernel).
    public struct Datagram {
        public let bytes: UnsafeRawBufferPointer
        public let sender: SocketAddress
        public let truncated: Bool

        /// Runs `body` with the datagram's bytes as a `RawSpan`: the batch's memory, read in place
        /// (no copy), bounds-checked, and unable to escape `body`, so it cannot outlive the
        /// receive that filled it (the next receive reuses the memory).
        ///
        /// ```swift
        /// let count = try await socket.receive(into: batch)
        /// for index in 0..<count {
        ///     let firstByte = batch[index].withBytes { $0.isEmpty ? nil : $0.unsafeLoad(as: UInt8.self) }
        ///     if let firstByte { print("datagram \(index) starts with \(firstByte)") }
        /// }
        /// ```
        ///
        /// A closure, not a `RawSpan` property: a property returning a span needs `@_lifetime`,
        /// which Swift 6.3 accepts only with the experimental `Lifetimes` feature.
        public func withBytes<Result, Failure: Error>(_ body: (RawSpan) throws(Failure) -> Result) throws(Failure) -> Result {
            try body(bytes.bytes)
        }
    }

    /// How many datagrams one receive can take (at most 64).
    public let capacity: Int
    /// The room for each datagram, in bytes.
    public let datagramSize: Int
    /// How many datagrams the last receive stored.
    public private(set) var count = 0

    private let slots: DatagramSlots
    private var capacities: [UInt]
    private var senders: [sockaddr_storage]
    private var senderLengths: [CUnsignedInt]
    private var lengths: [UInt]
    private var truncated: [CInt]

    /// - Parameters:
    ///   - capacity: datagrams per receive, 1...64 (`recvmmsg`'s batch; 32 is a good start).
    ///   - datagramSize: bytes of room per datagram; 65,536 never truncates a UDP datagram.
    public init(capacity: Int = 32, datagramSize: Int = 2048) {
        slots = DatagramSlots(capacity: capacity, datagramSize: datagramSize, of: "UDPReceiveBatch")
        self.capacity = capacity
        self.datagramSize = datagramSize
        capacities = Array(repeating: UInt(datagramSize), count: capacity)
        senders = Array(repeating: sockaddr_storage(), count: capacity)
        senderLengths = Array(repeating: 0, count: capacity)
        lengths = Array(repeating: 0, count: capacity)
        truncated = Array(repeating: 0, count: capacity)
    }

    /// The datagram at `index` (0..<``count``) of the last receive.
    public subscript(index: Int) -> Datagram {
        usagePrecondition(index >= 0 && index < count, "datagram \(index) of a batch holding \(count)")
        let sender = SocketAddress(storage: senders[index], length: socklen_t(senderLengths[index]))
        return Datagram(
            bytes: UnsafeRawBufferPointer(start: slots.buffers[index], count: Int(lengths[index])),
            // A UDP socket only hears from IPv4 and IPv6 senders.
            sender: sender ?? SocketAddress.loopbackIPv4(port: 0),
            truncated: truncated[index] != 0)
    }

    /// One non-blocking `recvmmsg`: the number of datagrams stored, or nil when none is queued.
    fileprivate func attempt(_ fd: CInt) throws(IOError) -> Int? {
        let outcome = rawSyscall("recvmmsg") {
            ciopool_recvmmsg(fd, slots.buffers, capacities, CUnsignedInt(capacity), &senders, &senderLengths, &lengths, &truncated)
        }
        switch outcome {
        case .done(let received):
            count = Int(received)
            return count
        case .failed(let errno) where errno == .resourceTemporarilyUnavailable || errno == .wouldBlock:
            count = 0
            return nil
        case .failed(let errno):
            count = 0
            throw IOError(errno: errno, operation: "receive (recvmmsg)")
        }
    }
}

extension UDPSocket {
    /// Receives as many datagrams as are queued, up to the batch's capacity, with one system call
    /// (`recvmmsg`); waits for the first if none is. Returns how many were stored (at least 1);
    /// read them as `batch[0..<count]`.
    ///
    /// The same semantics as ``receive(into:)-(UnsafeMutableRawBufferPointer)`` per datagram
    /// (truncation, `ECONNREFUSED` on a connected socket), and the same cancellation safety.
    nonisolated(nonsending)
    public func receive(into batch: UDPReceiveBatch) async throws -> Int {
        try await handle.perform(.read, "receive (recvmmsg)") { (fd) throws(IOError) -> IOAttempt<Int> in
            guard let count = try batch.attempt(fd) else { return .wouldBlock }
            // Fewer than asked for: the queue is empty now, the next receive may wait at once.
            return count < batch.capacity ? .drained(count) : .complete(count)
        }
    }

    /// Sets the kernel's receive buffer (`SO_RCVBUF`; the kernel doubles it and caps it at
    /// `net.core.rmem_max`), which bounds how many datagrams queue while the server is busy
    /// before the kernel drops new ones.
    public func setReceiveBufferSize(_ bytes: Int) throws(IOError) {
        try handle.setOption(level: SOL_SOCKET, name: SO_RCVBUF, CInt(clamping: bytes), "setsockopt(SO_RCVBUF)")
    }

    /// The kernel's receive buffer in bytes (`SO_RCVBUF`, as the kernel reports it: doubled).
    public var receiveBufferSize: Int {
        get throws(IOError) { Int(try handle.getOption(level: SOL_SOCKET, name: SO_RCVBUF, "getsockopt(SO_RCVBUF)") as CInt) }
    }
}

/// Datagrams to send with one system call: ``UDPSocket/send(_:)-(UDPSendBatch)`` sends them
/// with `sendmmsg(2)`.
///
/// Each `append` copies the datagram into the batch's memory (allocated once, in `init`), so the
/// caller's buffers are free at once; `removeAll()` empties the batch for reuse.
///
/// ```swift
/// let batch = UDPSendBatch(capacity: 32, datagramSize: 1500)
/// for reply in replies { batch.append(reply.bytes, to: reply.client) }
/// try await socket.send(batch)
/// batch.removeAll()
/// ```
///
/// Not `Sendable`: one task fills and sends a batch at a time.
public final class UDPSendBatch {
    /// How many datagrams the batch holds (at most 64).
    public let capacity: Int
    /// The largest datagram the batch takes, in bytes.
    public let datagramSize: Int
    /// How many datagrams were appended since the last `removeAll()`.
    public private(set) var count = 0

    private let slots: DatagramSlots
    private var lengths: [UInt]
    private var destinations: [sockaddr_storage]
    private var destinationLengths: [CUnsignedInt]

    /// - Parameters:
    ///   - capacity: datagrams per batch, 1...64.
    ///   - datagramSize: the largest datagram `append` takes.
    public init(capacity: Int = 32, datagramSize: Int = 2048) {
        slots = DatagramSlots(capacity: capacity, datagramSize: datagramSize, of: "UDPSendBatch")
        self.capacity = capacity
        self.datagramSize = datagramSize
        lengths = Array(repeating: 0, count: capacity)
        destinations = Array(repeating: sockaddr_storage(), count: capacity)
        destinationLengths = Array(repeating: 0, count: capacity)
    }

    /// Whether the batch holds `capacity` datagrams.
    public var isFull: Bool { count == capacity }

    /// Adds a copy of `bytes` as the next datagram, to `address` (nil: to the connected peer).
    /// - Precondition: the batch is not full and `bytes` fits in `datagramSize`.
    public func append(_ bytes: UnsafeRawBufferPointer, to address: SocketAddress? = nil) {
        usagePrecondition(!isFull, "the UDPSendBatch is full (\(capacity) datagrams)")
        usagePrecondition(bytes.count <= datagramSize, "a \(bytes.count)-byte datagram in a UDPSendBatch of \(datagramSize)-byte datagrams")
        if let base = bytes.baseAddress { slots.buffers[count].copyMemory(from: base, byteCount: bytes.count) }
        lengths[count] = UInt(bytes.count)
        if let address {
            address.withSockAddr { (pointer, length) in
                withUnsafeMutableBytes(of: &destinations[count]) {
                    $0.copyMemory(from: UnsafeRawBufferPointer(start: pointer, count: Int(length)))
                }
                destinationLengths[count] = CUnsignedInt(length)
            }
        } else {
            destinationLengths[count] = 0
        }
        count += 1
    }

    /// Adds a copy of `bytes` as the next datagram (see ``append(_:to:)-(UnsafeRawBufferPointer,_)``).
    public func append<Bytes: Collection<UInt8>>(_ bytes: Bytes, to address: SocketAddress? = nil) {
        if let done: Void = bytes.withContiguousStorageIfAvailable({ append(UnsafeRawBufferPointer($0), to: address) }) {
            return done
        }
        Array(bytes).withUnsafeBytes { append($0, to: address) }
    }

    /// Empties the batch (the memory stays, for the next datagrams).
    public func removeAll() {
        count = 0
    }

    /// One non-blocking `sendmmsg` of the datagrams from `start`: how many it sent, or nil when
    /// the first would block.
    fileprivate func attempt(_ fd: CInt, from start: Int) throws(IOError) -> Int? {
        let remaining = count - start
        let outcome = rawSyscall("sendmmsg") {
            slots.buffers.withUnsafeBufferPointer { buffers in
                lengths.withUnsafeBufferPointer { lengths in
                    destinations.withUnsafeBufferPointer { destinations in
                        destinationLengths.withUnsafeBufferPointer { destinationLengths in
                            ciopool_sendmmsg(
                                fd, buffers.baseAddress! + start, lengths.baseAddress! + start, CUnsignedInt(remaining),
                                destinations.baseAddress! + start, destinationLengths.baseAddress! + start)
                        }
                    }
                }
            }
        }
        switch outcome {
        case .done(let sent):
            return Int(sent)
        case .failed(let errno) where errno == .resourceTemporarilyUnavailable || errno == .wouldBlock:
            return nil
        case .failed(let errno):
            let destination = destinationLengths[start] == 0
                ? "the connected peer"
                : SocketAddress(storage: destinations[start], length: socklen_t(destinationLengths[start])).map { "\($0)" } ?? "?"
            throw IOError(
                errno: errno, operation: "send (sendmmsg)",
                detail: "datagram \(start) of \(count) (\(lengths[start]) bytes to \(destination)); the \(start) before it were sent")
        }
    }
}

extension UDPSocket {
    /// Sends every datagram of `batch`, with as few `sendmmsg` calls as the kernel allows,
    /// waiting for room in the send buffer when it is full. Each datagram is sent whole or not at
    /// all, as by ``send(_:to:)-(UnsafeRawBufferPointer,_)``.
    ///
    /// - Throws: ``IOError`` for the first datagram the kernel refuses (its index, size and
    ///   destination are in the error's detail; the ones before it were sent), or
    ///   `CancellationError` (some datagrams may have been sent).
    nonisolated(nonsending)
    public func send(_ batch: UDPSendBatch) async throws {
        var sent = 0
        while sent < batch.count {
            let start = sent
            sent += try await handle.perform(.write, "send (sendmmsg)") { (fd) throws(IOError) -> IOAttempt<Int> in
                guard let count = try batch.attempt(fd, from: start) else { return .wouldBlock }
                return .complete(count)
            }
        }
    }
}

/// The memory of a batch: `capacity` slots of `datagramSize` bytes, allocated once.
private final class DatagramSlots {
    let buffers: [UnsafeMutableRawPointer]
    private let memory: UnsafeMutableRawBufferPointer

    init(capacity: Int, datagramSize: Int, of batch: StaticString) {
        usagePrecondition((1...64).contains(capacity), "\(batch) capacity must be 1...64, not \(capacity)")
        usagePrecondition(datagramSize >= 1, "\(batch) datagramSize must be positive, not \(datagramSize)")
        let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: capacity * datagramSize, alignment: 16)
        self.memory = memory
        buffers = (0..<capacity).map { memory.baseAddress! + $0 * datagramSize }
    }

    deinit {
        memory.deallocate()
    }
}
