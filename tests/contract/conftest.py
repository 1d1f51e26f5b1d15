"""Counts the requests schemathesis makes, reported at the end of the run."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
import schemathesis

REQUESTS: Counter[str] = Counter()


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Count one generated request under its operation."""
    REQUESTS[f"{case.operation.method.upper()} {case.operation.path}"] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REQUESTS:
        terminalreporter.write_line(
            f"schemathesis: {sum(REQUESTS.values())} generated requests over {len(REQUESTS)} operations"
        )
