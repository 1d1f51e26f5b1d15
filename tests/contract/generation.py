"""How much schemathesis generates, shared by the contract tests of both documents."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

#: Generated cases per operation (and stateful runs); `make fuzz` raises it for a longer run.
EXAMPLES = int(os.environ.get("MAEVE_CONTRACT_EXAMPLES", "40"))
#: Reproducible runs: the same cases every time, nothing remembered between runs.
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
