import Hummingbird

/// TechEmpower's JSON test body, encoded per request with Codable as the test requires.
struct Message: ResponseEncodable {
    let message: String
}

/// The one router both servers serve, generic over the context only because Hummingbird's NIO
/// server builds `BasicRequestContext`s and IOPool's builds `IOPoolRequestContext`s: the routes,
/// handlers and encoders are the same code.
func buildBenchRouter<Context: RequestContext>(context: Context.Type) -> Router<Context> {
    let router = Router(context: Context.self)
    router.get("plaintext") { _, _ in "Hello, World!" }
    router.get("json") { _, _ in Message(message: "Hello, World!") }
    return router
}
