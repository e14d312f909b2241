public import Hummingbird
public import Logging

/// What a request context is made from when Hummingbird runs on IOPoolHTTP's server.
///
/// Hummingbird's own ``Hummingbird/ApplicationRequestContextSource`` carries a SwiftNIO `Channel`,
/// which this server does not have; a context type moves to IOPool by taking this source instead
/// (`typealias Source = IOPoolRequestContextSource`, or use ``IOPoolRequestContext``).
public struct IOPoolRequestContextSource: RequestContextSource, Sendable {
    /// The request's logger, with `hb.request.id` in its metadata (as Hummingbird's
    /// `RequestContext.id` expects).
    public let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }
}

/// Hummingbird's `BasicRequestContext` for IOPool: everything the router and its middleware need,
/// built from an ``IOPoolRequestContextSource``.
///
/// ```swift
/// let router = Router(context: IOPoolRequestContext.self)
/// ```
public struct IOPoolRequestContext: RequestContext {
    public typealias Source = IOPoolRequestContextSource

    public var coreContext: CoreRequestContextStorage

    public init(source: IOPoolRequestContextSource) {
        self.coreContext = .init(source: source)
    }
}
