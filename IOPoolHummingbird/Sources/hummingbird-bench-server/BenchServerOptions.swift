/// `--host H --port P --threads N --server nio|iopool --pool io|stealing`, parsed by hand: an
/// argument parser package would be one more dependency to resolve and build for five options.
struct BenchServerOptions {
    enum Server: String {
        case nio, iopool
    }

    /// The pool of `--server iopool` (names as `iopool http-server --pool`).
    enum Pool: String {
        case io, stealing
    }

    var host = "127.0.0.1"
    var port = 8080
    var threads = 1
    var server = Server.iopool
    var pool = Pool.io

    static let usage = "usage: hummingbird-bench-server [--host H] [--port P] [--threads N] [--server nio|iopool] [--pool io|stealing (iopool only)]"

    struct UsageError: Error, CustomStringConvertible {
        var description: String
    }

    init(arguments: some Sequence<String>) throws(UsageError) {
        var arguments = arguments.makeIterator()
        while let option = arguments.next() {
            guard let value = arguments.next() else { throw UsageError(description: "\(option) needs a value") }
            switch option {
            case "--host":
                host = value
            case "--port":
                guard let port = Int(value), (0...65535).contains(port) else {
                    throw UsageError(description: "--port: \(value) is not a port (0-65535)")
                }
                self.port = port
            case "--threads":
                guard let threads = Int(value), threads >= 1 else {
                    throw UsageError(description: "--threads: \(value) is not a positive count")
                }
                self.threads = threads
            case "--server":
                guard let server = Server(rawValue: value) else {
                    throw UsageError(description: "--server: \(value) is neither nio nor iopool")
                }
                self.server = server
            case "--pool":
                guard let pool = Pool(rawValue: value) else {
                    throw UsageError(description: "--pool: \(value) is neither io nor stealing")
                }
                self.pool = pool
            default:
                throw UsageError(description: "unknown option \(option)")
            }
        }
    }
}
