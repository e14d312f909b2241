import HTTPTypes
import IOPoolHTTP
import Testing

struct HTTPRequestErrorTests {
    @Test func anErrorSaysItsStatusAndWhatWasWrong() {
        let error = HTTPRequestError(status: .badRequest, reason: "both Content-Length and Transfer-Encoding")
        #expect("\(error)" == "400 Bad Request: both Content-Length and Transfer-Encoding")
    }
}
