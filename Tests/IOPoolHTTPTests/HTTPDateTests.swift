@testable import IOPoolHTTP
import Testing

/// The `Date` field's IMF-fixdate (RFC 9110 §5.6.7), in English and GMT whatever the locale.
struct HTTPDateTests {
    @Test func theRFCsExampleFormatsExactly() {
        // RFC 9110's own example: Sun, 06 Nov 1994 08:49:37 GMT.
        #expect(String(decoding: HTTPDate.format(secondsSinceEpoch: 784_111_777), as: UTF8.self) == "Sun, 06 Nov 1994 08:49:37 GMT")
    }

    @Test func singleDigitsArePaddedAndTheEpochIsAThursday() {
        #expect(String(decoding: HTTPDate.format(secondsSinceEpoch: 0), as: UTF8.self) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(String(decoding: HTTPDate.format(secondsSinceEpoch: 1_709_341_261), as: UTF8.self) == "Sat, 02 Mar 2024 01:01:01 GMT")
    }

    @Test func theCachedDateIsTwentyNineBytesOfThisSecond() {
        var output: [UInt8] = []
        HTTPDate.append(to: &output)
        #expect(output.count == 29)
        #expect(String(decoding: output, as: UTF8.self).hasSuffix(" GMT"))
    }
}
