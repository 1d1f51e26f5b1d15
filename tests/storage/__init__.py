"""Repository conformance suite: every storage engine behind the interface behaves the same."""
