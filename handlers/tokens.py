"""Handlers for authorization tokens."""

from __future__ import annotations

from typing import Any

from maeve_api.domain.schemas import TOKEN, TOKENS
from maeve_api.web.context import read, storage


def set_token(body: dict[str, Any]) -> tuple[None, int]:
    storage().tokens.put(TOKEN.load(body))
    return None, 201


def list_tokens(offset: int = 0, limit: int = 20) -> tuple[list[dict[str, Any]], int]:
    return TOKENS.dump(storage().tokens.page(offset, limit)), 200


async def lookup_token(token_uid: str) -> tuple[dict[str, Any], int]:
    return TOKEN.dump(await read(storage().tokens.get, token_uid)), 200
