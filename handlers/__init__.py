"""One module per resource; one function per operationId, in snake_case."""
