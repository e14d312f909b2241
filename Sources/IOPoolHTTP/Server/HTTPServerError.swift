import HTTPTypes
import IOPool

/// What went wrong while serving a request, as the responder sees it.
public enum HTTPServerError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The client sent nothing of the body for ``HTTPServer/Configuration/bodyTimeout``.
    case bodyTimedOut(Duration)
    /// The client took no response bytes for ``HTTPServer/Configuration/writeTimeout``; the
    /// connection was closed.
    case writeTimedOut(Duration)
    /// The client closed the connection before the end of the body.
    case bodyIncomplete
    /// Malformed chunked framing, or a chunked body over ``HTTPRequestLimits/maxBodySize``.
    case invalidBody(HTTPRequestError)
    /// ``HTTPRequestBody/collect(upTo:)``: the body is longer than the limit given.
    case bodyTooLarge(limit: Int)
    /// A second head: `respond` or `writeHead` after the response began.
    case responseAlreadyStarted
    /// `write` or `finish` before `writeHead`.
    case responseNotStarted
    /// `write` or `finish` after `finish`.
    case responseFinished
    /// A streamed response's `Content-Length` field is not a number.
    case invalidContentLength(String)
    /// More body bytes written than the response's `Content-Length`.
    case bodyLongerThanContentLength
    /// `finish` with fewer body bytes written than the response's `Content-Length`.
    case bodyShorterThanContentLength(missing: Int)

    public var description: String {
        switch self {
        case .bodyTimedOut(let timeout): "the client sent no body bytes for \(timeout)"
        case .writeTimedOut(let timeout): "the client took no response bytes for \(timeout); the connection was closed"
        case .bodyIncomplete: "the client closed the connection before the end of the request body"
        case .invalidBody(let error): "invalid request body: \(error)"
        case .bodyTooLarge(let limit): "the request body is over \(limit) bytes"
        case .responseAlreadyStarted: "the response has already begun: a response has one head"
        case .responseNotStarted: "write or finish before writeHead: the response has no head yet"
        case .responseFinished: "the response is already finished"
        case .invalidContentLength(let value): "the response's Content-Length is not a number: \(value)"
        case .bodyLongerThanContentLength: "more body bytes written than the response's Content-Length"
        case .bodyShorterThanContentLength(let missing): "the response ended \(missing) bytes short of its Content-Length"
        }
    }
}
