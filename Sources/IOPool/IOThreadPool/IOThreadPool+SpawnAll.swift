// `spawnAll`, tokio-io-pool's `spawn_all`: an accept loop's shape, one task per element. (`run`,
// which both pools have, is `TaskPool`'s.)

extension IOThreadPool {
    /// Runs `body(element)` as a new task, round-robin over the threads, for each element of
    /// `sequence`, and returns when the sequence ends. tokio-io-pool's `spawn_all`.
    ///
    /// - Throws: ``SpawnAllError/sequence(_:)`` with the sequence's own error, or
    ///   ``SpawnAllError/spawn(_:)`` if the pool shut down.
    public func spawnAll<Elements: AsyncSequence>(
        _ sequence: Elements,
        _ body: @escaping @Sendable (Elements.Element) async -> Void
    ) async throws(SpawnAllError<Elements.Failure>) where Elements.Element: Sendable {
        var iterator = sequence.makeAsyncIterator()
        while true {
            let element: Elements.Element?
            do {
                element = try await iterator.next(isolation: nil)
            } catch {
                throw .sequence(error)
            }
            guard let element else { return }
            do {
                try spawn { await body(element) }
            } catch {
                throw .spawn(error)
            }
        }
    }
}

/// Why ``IOThreadPool/spawnAll(_:_:)`` stopped early: the sequence failed, or a spawn did
/// (tokio-io-pool's `StreamSpawnError`).
public enum SpawnAllError<SequenceFailure: Error>: Error {
    /// The sequence threw.
    case sequence(SequenceFailure)
    /// The pool refused the spawn (it has shut down).
    case spawn(IOPoolError)
}
