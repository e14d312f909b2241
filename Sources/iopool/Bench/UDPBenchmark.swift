import ArgumentParser
import Glibc
import IOPool

// `iopool bench udp`: what a batched receive saves through the library, not just in the kernel
// (Benchmarks/udp-mmsg measures the bare syscalls). On one IOThread: queue a burst of datagrams
// on a loopback socket (loopback delivers inside the sender's `sendto`, so the whole burst is
// queued when the sends return), then drain it, timed, either with `receive(into:)` (one
// `recvfrom` per datagram) or with `receive(into: UDPReceiveBatch)` (one `recvmmsg` per batch).
// The two ways alternate round by round; the medians of ns per datagram are compared.

extension BenchCommand {
    struct UDP: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "udp",
            abstract: "UDPSocket: one datagram per receive against a UDPReceiveBatch (recvmmsg), draining loopback bursts.")

        @Option(help: "Datagrams per burst (the receive buffer must hold a whole burst).") var burst = 256
        @Option(help: "Datagram size in bytes.") var size = 64
        @Option(help: "Datagrams per batch receive (1...64).") var batch = 32
        @Option(help: "Rounds per way (the median is reported).") var rounds = 101

        func validate() throws {
            guard burst > 0, size > 0, rounds > 0, (1...64).contains(batch) else {
                throw ValidationError("--burst, --size and --rounds must be positive, --batch 1...64")
            }
        }

        func run() async throws {
            let pool = try IOThreadPool(configuration: .init(threadCount: 1, threadNamePrefix: "bench-udp-"))
            let (burst, size, batchSize, rounds) = (burst, size, batch, rounds)
            let (single, batched) = try await pool.spawn { () async throws -> (Double, Double) in
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
                var single: [Double] = []
                var batched: [Double] = []
                for round in 0..<rounds {
                    for batchedWay in round % 2 == 0 ? [false, true] : [true, false] {
                        for _ in 0..<burst { try await sender.send(payload, to: address) }
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
                        let perDatagram = Double(end - start) / Double(drained)
                        if batchedWay { batched.append(perDatagram) } else { single.append(perDatagram) }
                    }
                }
                return (median(single), median(batched))
            }.value
            await pool.shutdown()
            printLine("udp: drain bursts of \(burst) queued \(size)-byte datagrams on one IOThread; median of \(rounds) rounds each")
            printLine(pad("way", 40) + "ns per datagram")
            printLine(pad("receive(into:) (recvfrom)", 40) + format1(single))
            printLine(pad("receive(into: batch of \(batchSize)) (recvmmsg)", 40) + format1(batched))
            printLine("batched speed-up: \(format2(single / batched))×")
        }
    }
}
