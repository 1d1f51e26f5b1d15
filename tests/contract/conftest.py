"""Hooks for both documents' contract tests: path values schemathesis can send as generated, and a request count."""

from __future__ import annotations

from collections import Counter
from typing import Any
from urllib.parse import unquote

import pytest
import schemathesis

REQUESTS: Counter[str] = Counter()


@schemathesis.hook
def filter_path_parameters(context: Any, path_parameters: dict[str, Any] | None) -> bool:
    """Skip generated path values that hold a valid percent-escape, such as the text ``%41``.

    schemathesis unquotes a path value before quoting it (``quote_all`` in transport/serialization.py),
    so such a value goes out decoded: the server then receives a different value from the one generated.
    """
    return all(not isinstance(value, str) or unquote(value) == value for value in (path_parameters or {}).values())


@schemathesis.hook
def after_call(context: Any, case: Any, response: Any) -> None:
    """Count one generated request under its operation."""
    REQUESTS[f"{case.operation.method.upper()} {case.operation.path}"] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if REQUESTS:
        terminalreporter.write_line(
            f"schemathesis: {sum(REQUESTS.values())} generated requests over {len(REQUESTS)} operations"
        )
