"""What a route returns to the server: a whole response, or a stream of chunks (the live view)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

JSON = "application/json"
# Nothing the page loads comes from elsewhere; nothing may frame it.
PAGE_POLICY = ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
               "form-action 'none'; frame-ancestors 'none'")


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes = b""
    content_type: str = JSON
    headers: tuple[tuple[str, str], ...] = ()
    cache: str = "no-store"


@dataclass
class Stream:
    """A 200 whose body is written chunk by chunk until the iterator ends or the client leaves;
    `close` runs in every case, once."""

    content_type: str
    chunks: Iterator[bytes]
    close: Callable[[], None] = field(default=lambda: None)


def json_response(data: Any, status: int = 200) -> Response:
    return Response(status, json.dumps(data, ensure_ascii=False).encode())


def error(status: int, message: str) -> Response:
    """A one-line JSON error: {"error": "..."}."""
    return json_response({"error": message}, status)
