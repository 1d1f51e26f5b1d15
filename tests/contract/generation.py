"""How much schemathesis generates, shared by the contract tests of both documents."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, settings

#: Generated cases per operation (and stateful runs); `make fuzz` raises it for a longer run.
EXAMPLES = int(os.environ.get("MAEVE_CONTRACT_EXAMPLES", "20"))
#: Reproducible runs: the same cases every time, nothing remembered between runs.
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)


def operation_ids(spec: dict[str, Any]) -> list[str]:
    """Every operationId of ``spec``, in the document's order."""
    return [
        operation["operationId"]
        for item in spec["paths"].values()
        for operation in item.values()
        if isinstance(operation, dict) and "operationId" in operation
    ]


def per_operation_tests(
    lazy_schema: Any, spec: dict[str, Any], make_test: Callable[[], Callable[..., None]]
) -> dict[str, Callable[..., None]]:
    """``test_<operationId>_conforms`` for each operation of ``spec``: ``make_test()`` run on that operation only.

    One pytest item per operation lets pytest-xdist spread the operations over its workers; a single
    parametrized test would hold every operation's cases as subtests of one item.
    """
    return {
        f"test_{operation_id}_conforms": lazy_schema.include(operation_id=operation_id).parametrize()(
            HYPOTHESIS(make_test())
        )
        for operation_id in operation_ids(spec)
    }
