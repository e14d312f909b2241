import CIOPoolShims
import Glibc
import SystemPackage

/// A joinable OS thread started with `pthread_create`, named and with an optional stack size.
///
/// We start threads ourselves (not Foundation's `Thread`) to control the name, the stack and the
/// join, and to keep Foundation out of the library.
struct PThread: @unchecked Sendable {  // a pthread_t is a plain handle; joining it is thread-safe
    let handle: pthread_t

    /// Linux limits thread names to 15 bytes (16 with the NUL); longer names are truncated on a
    /// UTF-8 character boundary.
    static let maxNameBytes = 15

    static func truncatedName(_ name: String) -> String {
        var result = ""
        var bytes = 0
        for character in name {
            let size = String(character).utf8.count
            if bytes + size > maxNameBytes { break }
            result.append(character)
            bytes += size
        }
        return result
    }

    /// Starts `body` on a new thread. Throws the errno of `pthread_create` if the OS refuses.
    static func start(name: String?, stackSize: Int?, _ body: @escaping @Sendable () -> Void) throws(Errno) -> PThread {
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        defer { pthread_attr_destroy(&attributes) }
        if let stackSize {
            let rc = pthread_attr_setstacksize(&attributes, max(stackSize, Int(PTHREAD_STACK_MIN)))
            if rc != 0 { throw Errno(rawValue: rc) }
        }
        final class Box { let body: @Sendable () -> Void; let name: String?; init(_ b: @escaping @Sendable () -> Void, _ n: String?) { body = b; name = n } }
        let box = Unmanaged.passRetained(Box(body, name.map(truncatedName)))
        var handle = pthread_t()
        let rc = pthread_create(&handle, &attributes, { argument in
            let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
            if let name = box.name { _ = ciopool_set_thread_name(name) }
            box.body()
            return nil
        }, box.toOpaque())
        if rc != 0 {
            box.release()
            throw Errno(rawValue: rc)
        }
        return PThread(handle: handle)
    }

    /// Lets the thread's resources go back to the system when it ends (at once if it has ended),
    /// without waiting for it. Instead of `join()`, never after it.
    func detach() {
        pthread_detach(handle)
    }

    /// Waits for the thread to end. Must not be called on the thread itself.
    func join() {
        precondition(pthread_equal(handle, pthread_self()) == 0, "a thread cannot join itself")
        pthread_join(handle, nil)
    }
}
