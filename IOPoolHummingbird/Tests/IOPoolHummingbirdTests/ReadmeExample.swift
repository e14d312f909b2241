// The README's example, verbatim between the markers, so that it compiles as long as the test does;
// `ReadmeExampleTests` serves `buildRouter()` on port 0.

// README BEGIN
import Hummingbird
import IOPoolHummingbird

struct Greeting: ResponseCodable {
    let message: String
}

func buildRouter() -> Router<IOPoolRequestContext> {
    let router = Router(context: IOPoolRequestContext.self)
    router.get("hello/:name") { _, context in
        Greeting(message: "Hello, \(try context.parameters.require("name"))!")
    }
    return router
}

func runApp() async throws {
    // Was: let app = Application(router: buildRouter(), configuration: .init(address: .hostname("127.0.0.1", port: 8080)))
    let app = IOPoolApplication(router: buildRouter(), configuration: .init(address: .loopbackIPv4(port: 8080)))
    try await app.runService()
}
// README END
