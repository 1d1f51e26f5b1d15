"""Web plumbing: the app factory, middleware, error mapping, request log, metrics, probes, listeners."""
