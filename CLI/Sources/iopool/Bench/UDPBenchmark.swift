import Glibc
import IOPool

// The measurement of `iopool bench udp`: what batching saves through the library, not just in the kernel
// (Benchmarks/udp-mmsg measures the bare syscalls). On one IOThread, per round:
// - send a burst of datagrams to a loopback socket, timed, with `send(_:to:)` (one `sendto` per
//   datagram) or `send(_: UDPSendBatch)` (one `sendmmsg` per batch); loopback delivers inside the
//   send, so the timed sends include the delivery, as in udp-mmsg;
// - then drain the queued burst, timed, with `receive(into:)` (one `recvfrom` per datagram) or
//   `receive(into: UDPReceiveBatch)` (one `recvmmsg` per batch).
// Single and batched ways alternate round by round; the medians of ns per datagram are compared.

enum UDPBenchmark {
    /// Median ns per datagram of `rounds` rounds each: [sendto, sendmmsg, recvfrom, recvmmsg].
    static func medians(burst: Int, size: Int, batchSize: Int, rounds: Int) async throws -> [Double] {
        let pool = try IOThreadPool(configuration: .init(threadCount: 1, threadNamePrefix: "bench-udp-"))
        let medians = try await pool.spawn { () async throws -> [Double] in
            let receiver = try UDPSocket.bind(.loopbackIPv4(port: 0))
            let sender = try UDPSocket.bind(.loopbackIPv4(port: 0))
            defer {
                receiver.close()
                sender.close()
            }
            try receiver.setReceiveBufferSize(8 << 20)
            let address = try receiver.localAddress
            let payload = [UInt8](repeating: 0x5A, count: size)
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
            defer { buffer.deallocate() }
            let batch = UDPReceiveBatch(capacity: batchSize, datagramSize: max(size, 64))
            let sendBatch = UDPSendBatch(capacity: batchSize, datagramSize: max(size, 64))
            var single: (send: [Double], receive: [Double]) = ([], [])
            var batched: (send: [Double], receive: [Double]) = ([], [])
            for round in 0..<rounds {
                for batchedWay in round % 2 == 0 ? [false, true] : [true, false] {
                    let sendStart = now()
                    if batchedWay {
                        var sent = 0
                        while sent < burst {
                            sendBatch.removeAll()
                            while !sendBatch.isFull && sent + sendBatch.count < burst { sendBatch.append(payload, to: address) }
                            try await sender.send(sendBatch)
                            sent += sendBatch.count
                        }
                    } else {
                        for _ in 0..<burst { try await sender.send(payload, to: address) }
                    }
                    let sendEnd = now()
                    // If the kernel dropped part of the burst (receive buffer too small), the drain
                    // would wait forever: a watchdog closes the socket, which fails the receive.
                    let watchdog = spawn {
                        try? await sleep(for: .seconds(5))
                        if !Task.isCancelled { receiver.close() }
                    }
                    let start = now()
                    var drained = 0
                    do {
                        while drained < burst {
                            if batchedWay {
                                drained += try await receiver.receive(into: batch)
                            } else {
                                _ = try await receiver.receive(into: buffer)
                                drained += 1
                            }
                        }
                    } catch {
                        throw BenchError("udp: \(drained) of \(burst) datagrams arrived (\(error)); the kernel dropped the rest: lower --burst")
                    }
                    let end = now()
                    watchdog.cancel()
                    let sendNanoseconds = Double(sendEnd - sendStart) / Double(burst)
                    let receiveNanoseconds = Double(end - start) / Double(drained)
                    if batchedWay {
                        batched.send.append(sendNanoseconds)
                        batched.receive.append(receiveNanoseconds)
                    } else {
                        single.send.append(sendNanoseconds)
                        single.receive.append(receiveNanoseconds)
                    }
                }
            }
            return [median(single.send), median(batched.send), median(single.receive), median(batched.receive)]
        }.value
        await pool.shutdown()
        return medians
    }
}
