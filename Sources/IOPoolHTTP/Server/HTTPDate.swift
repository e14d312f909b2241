#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// The `Date` field of responses (RFC 9110 §6.6.1: an origin server with a clock must send it),
/// formatted once per second per thread: formatting a date costs more than the rest of a small
/// response's head, and a second is the field's resolution.
///
/// Per thread, not per process: a process-wide cache would be one cache line written by every
/// thread once a second and read by all of them on every response. A thread's cache needs no lock.
enum HTTPDate {
    /// One thread's cache: the second it holds and the IMF-fixdate of it (29 bytes).
    private final class Cache {
        var second = Int.min
        var bytes: [UInt8] = []
    }

    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key) { pointer in
            if let pointer { Unmanaged<Cache>.fromOpaque(pointer).release() }
        }
        precondition(rc == 0, "pthread_key_create failed: \(rc)")
        return key
    }()

    private static var threadCache: Cache {
        if let pointer = pthread_getspecific(key) {
            return Unmanaged<Cache>.fromOpaque(pointer).takeUnretainedValue()
        }
        let cache = Cache()
        pthread_setspecific(key, Unmanaged.passRetained(cache).toOpaque())
        return cache
    }

    /// Appends this second's date, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func append(to output: inout [UInt8]) {
        var now = timespec()
        // The coarse clock is the vDSO's cheapest: its tick (a few ms) is far below a second.
        clock_gettime(CLOCK_REALTIME_COARSE, &now)
        let cache = threadCache
        if cache.second != now.tv_sec {
            cache.second = now.tv_sec
            cache.bytes = format(secondsSinceEpoch: now.tv_sec)
        }
        output.append(contentsOf: cache.bytes)
    }

    /// IMF-fixdate (RFC 9110 §5.6.7), in English whatever the locale: `strftime` would follow it.
    static func format(secondsSinceEpoch seconds: Int) -> [UInt8] {
        var time = time_t(seconds)
        var parts = tm()
        gmtime_r(&time, &parts)
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func twoDigits(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let text =
            "\(days[Int(parts.tm_wday)]), \(twoDigits(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(twoDigits(parts.tm_hour)):\(twoDigits(parts.tm_min)):\(twoDigits(parts.tm_sec)) GMT"
        return Array(text.utf8)
    }
}
