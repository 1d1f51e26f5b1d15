"""Connexion's AsyncApp with each handler's decorator chain built once instead of on every request."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import connexion
from connexion.apps.asynchronous import AsyncApi, AsyncOperation
from connexion.operations import AbstractOperation


class _Operation(AsyncOperation):
    """An operation whose decorated handler is built on first use and kept.

    Connexion's ``AsyncOperation.fn`` is a property that wraps the handler in its parameter, response
    and context decorators again for every request, calling ``inspect.signature`` each time; that was
    about a tenth of the CPU of an auth lookup (connexion#2077 tracks Connexion 3's per-request cost).
    """

    @functools.cached_property
    def fn(self) -> Callable[..., Any]:  # type: ignore[override]
        return super().fn


class _Api(AsyncApi):
    def make_operation(self, operation: AbstractOperation) -> AsyncOperation:
        return _Operation.from_operation(operation, pythonic_params=self.pythonic_params, jsonifier=self.jsonifier)


class App(connexion.AsyncApp):
    """``connexion.AsyncApp`` whose operations decorate their handler once."""

    def __init__(self, import_name: str, **kwargs: Any) -> None:
        super().__init__(import_name, **kwargs)
        # Read when the middleware stack is built, at the first request.
        self._middleware_app.api_cls = _Api
