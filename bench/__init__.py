"""A reproducible load benchmark of the internal API against a bare-ASGI baseline (``make bench``)."""
