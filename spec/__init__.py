"""The OpenAPI documents, the source of truth for every route, parameter, body and response."""
