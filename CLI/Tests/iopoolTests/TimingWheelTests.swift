@_spi(Benchmarks) import IOPool  // SplitMix64
import Testing

@testable import iopool

/// The benchmark's timing wheel must be correct for its numbers to mean anything: against a plain
/// model, under random inserts, cancels and polls (deadlines from "now" to past the clamp).
@Suite struct TimingWheelTests {
    @Test(arguments: [1, 2] as [UInt64])
    func matchesAModelUnderRandomOperations(seed: UInt64) throws {
        var generator = SplitMix64(seed: seed)
        var wheel = TimingWheel()
        var handles: [UInt: TimingWheel.Handle] = [:]
        var model: [UInt: UInt64] = [:]  // payload -> deadline tick (after clamping)
        var now: UInt64 = 0
        var nextPayload: UInt = 0
        var problems: [String] = []
        var totalFired = 0
        for step in 0..<20_000 {
            switch generator.next() % 10 {
            case 0..<5:
                let spans: [UInt64] = [0, 1, 63, 64, 4_095, 4_096, 300_000, TimingWheel.maxSpan + 5]
                let span = generator.next() % 2 == 0 ? generator.next() % 70_000 : spans[Int(generator.next() % UInt64(spans.count))]
                let deadline = now + span
                handles[nextPayload] = wheel.insert(deadline: deadline, payload: nextPayload)
                model[nextPayload] = min(deadline, now + TimingWheel.maxSpan)
                nextPayload += 1
            case 5..<7:
                guard let payload = model.keys.randomElement(using: &generator) else { continue }
                if wheel.cancel(handles[payload]!) != payload { problems.append("step \(step): cancel of \(payload) failed") }
                model[payload] = nil
            default:
                now += generator.next() % 3 == 0 ? generator.next() % 100_000 : generator.next() % 100
                var fired: [(UInt64, UInt)] = []
                wheel.poll(now: now) { tick, payload in fired.append((tick, payload)) }
                let due = Set(model.filter { $0.value <= now }.keys)
                if Set(fired.map(\.1)) != due || fired.count != due.count {
                    problems.append("step \(step): fired \(fired.count) timers, \(due.count) were due at \(now)")
                }
                if zip(fired, fired.dropFirst()).contains(where: { $0.0 > $1.0 }) { problems.append("step \(step): fired out of order") }
                for (tick, payload) in fired where model[payload] != tick {
                    problems.append("step \(step): \(payload) fired at tick \(tick), due at \(model[payload].map(String.init) ?? "never")")
                }
                totalFired += fired.count
                for (_, payload) in fired {
                    model[payload] = nil
                    // A fired timer's handle is stale: cancelling it is a no-op.
                    if wheel.cancel(handles[payload]!) != nil { problems.append("step \(step): cancel after fire returned a payload") }
                }
            }
            if problems.count > 5 { break }
        }
        #expect(wheel.count == model.count)
        #expect(problems == [])
        #expect(totalFired > 1_000, "the scenario must fire timers, not only insert and cancel them")
    }
}
