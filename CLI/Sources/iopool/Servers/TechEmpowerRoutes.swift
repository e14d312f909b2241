/// TechEmpower's plaintext and JSON tests: what `iopool http-server` serves and what
/// `iopool bench http` checks every server answers before it measures it.
enum TechEmpowerRoute: String, CaseIterable, Sendable {
    case plaintext = "/plaintext"
    case json = "/json"

    var path: String { rawValue }

    var contentType: String {
        switch self {
        case .plaintext: "text/plain"
        case .json: "application/json"
        }
    }

    /// The body, byte for byte as `iopool http-server` sends it. The JSON test's object may come
    /// from other servers spaced differently; `bench http` compares it as JSON.
    var body: String {
        switch self {
        case .plaintext: "Hello, World!"
        case .json: #"{"message":"Hello, World!"}"#
        }
    }
}
