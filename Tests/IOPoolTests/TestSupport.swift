import Glibc

/// The OS name of the calling thread (`/proc/thread-self/comm`).
func currentThreadName() -> String {
    let fd = open("/proc/thread-self/comm", O_RDONLY)
    guard fd >= 0 else { return "" }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 64)
    let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    guard count > 0 else { return "" }
    return String(decoding: buffer[..<count], as: UTF8.self).trimmingSuffixNewline()
}

extension String {
    func trimmingSuffixNewline() -> String {
        hasSuffix("\n") ? String(dropLast()) : self
    }
}

import Synchronization

/// A shareable atomic counter for tests (an `Atomic` itself cannot be captured by escaping closures).
final class Counter: Sendable {
    private let value = Atomic<Int>(0)
    init() {}
    func increment() { value.add(1, ordering: .relaxed) }
    var count: Int { value.load(ordering: .relaxed) }
}

// MARK: Helpers shared by the socket tests

import IOPool
import SystemPackage

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Awaits `task`; if the awaiting test is cancelled (its time limit), runs `onCancel` and cancels the
/// task, so that a task stuck on a bug ends and the test fails instead of hanging.
func value<Success: Sendable>(
    of task: Task<Success, any Error>, onCancel: @Sendable () -> Void
) async throws -> Success {
    try await withTaskCancellationHandler {
        try await task.value
    } onCancel: {
        onCancel()
        task.cancel()
    }
}

/// The non-throwing form of `value(of:onCancel:)`.
func value<Success: Sendable>(of task: Task<Success, Never>, onCancel: @Sendable () -> Void) async -> Success {
    await withTaskCancellationHandler {
        await task.value
    } onCancel: {
        onCancel()
        task.cancel()
    }
}

/// Reads until end of stream (`BufferedReader.readToEnd`, unbounded).
func readToEnd(_ stream: some AsyncByteReader) async throws -> [UInt8] {
    try await BufferedReader(stream).readToEnd(maxBytes: .max)
}

/// Reads exactly `count` bytes (`BufferedReader.readExactly`: end of stream before that throws
/// `IOError` ENODATA). A one-byte buffer never reads past `count`, so the stream can go on being
/// read directly afterwards.
func readExactly(_ stream: some AsyncByteReader, _ count: Int) async throws -> [UInt8] {
    try await BufferedReader(stream, capacity: 1).readExactly(count)
}

/// `count` bytes that start with `index` (little endian) and differ for every index.
func distinctMessage(_ index: Int, count: Int) -> [UInt8] {
    // A plain loop into uninitialized storage: the generic `map` over a range this replaced took
    // seconds for the MiB-sized messages of some tests in a debug build, on a thread of Swift's
    // two-thread global executor, which starved every off-pool test running beside them.
    [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        let header = UInt32(truncatingIfNeeded: index).littleEndian
        for position in 0..<count {
            buffer[position] = position < 4
                ? UInt8(truncatingIfNeeded: header >> (8 * UInt32(position)))
                : UInt8(truncatingIfNeeded: index &* 31 &+ position &* 7)
        }
        initialized = count
    }
}

/// A short text for an operation's outcome: "returned N bytes", or the error (`describe`).
func outcome(_ operation: () async throws -> [UInt8]) async -> String {
    do {
        return "returned \(try await operation().count) bytes"
    } catch {
        return describe(error)
    }
}

/// "ok", or the error (`describe`).
func outcome(_ operation: () async throws -> Void) async -> String {
    do {
        try await operation()
        return "ok"
    } catch {
        return describe(error)
    }
}

/// "IOError <ERRNO NAME> <operation>", "CancellationError", "sequence: ..." for `SpawnAllError`.
func describe(_ error: any Error) -> String {
    if let error = error as? IOError {
        let names: [Errno: String] = [
            .connectionReset: "ECONNRESET", .brokenPipe: "EPIPE", .badFileDescriptor: "EBADF",
            .canceled: "ECANCELED", .connectionRefused: "ECONNREFUSED", .messageTooLong: "EMSGSIZE",
            .addressFamilyNotSupported: "EAFNOSUPPORT", .addressRequired: "EDESTADDRREQ",
            .socketNotConnected: "ENOTCONN", .noSuchFileOrDirectory: "ENOENT", .addressInUse: "EADDRINUSE",
            .noData: "ENODATA", .invalidArgument: "EINVAL",
        ]
        return "IOError \(names[error.errno] ?? "errno \(error.errno.rawValue)") \(error.operation)"
    }
    if let error = error as? SpawnAllError<any Error> {
        switch error {
        case .sequence(let inner): return "sequence: \(describe(inner))"
        case .spawn(let inner): return "spawn: \(inner)"
        }
    }
    if error is CancellationError { return "CancellationError" }
    return "\(type(of: error)): \(error)"
}

func isCancellation<Success>(_ result: Result<Success, any Error>) -> Bool {
    if case .failure(let error) = result { return error is CancellationError }
    return false
}

func ioErrno<Success>(_ result: Result<Success, any Error>) -> Errno? {
    if case .failure(let error) = result { return (error as? IOError)?.errno }
    return nil
}
