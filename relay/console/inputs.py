"""Where the console's input becomes a value: ids in paths and query strings, and JSON bodies. Every
route and endpoint reads them through here, so that a number the store cannot hold or JSON that is not
JSON (nested without end, a lone surrogate that no text can carry) is a clear 4xx, never a 500.

  {id:id} in a route   an id the store can hold (relay/store/bounds.py); a bigger one is simply not
                       found: 404 before any handler runs (JSON under /api, as every API error)
  query_id             a query parameter that must be such an id (ValueError otherwise)
  json_body            the request's JSON, or BadJSON("invalid JSON: ...")
"""

from __future__ import annotations

import json
from typing import Any

from starlette.convertors import Convertor, register_url_convertor
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from relay.store.bounds import store_id

MAX_DEPTH = 32  # no request of the API nests more than two levels


class IdConvertor(Convertor[int]):
    regex = "[0-9]+"

    def convert(self, value: str) -> int:
        found = store_id(value)
        if found is None:
            raise HTTPException(404, "not found: no record has an id this large")
        return found

    def to_string(self, value: int) -> str:
        return str(int(value))


register_url_convertor("id", IdConvertor())


async def http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such route, an id out of range, a wrong method): JSON under /api, like
    the API's other errors; plain text on the console's pages, as Starlette answers."""
    assert isinstance(exc, HTTPException)
    if exc.status_code in (204, 304):
        return Response(status_code=exc.status_code, headers=exc.headers)
    if request.url.path == "/api" or request.url.path.startswith("/api/"):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)


def query_id(request: Request, name: str, default: int = 0) -> int:
    """The query parameter `name` as an id the store can hold (`default` when absent or empty)."""
    text = request.query_params.get(name) or ""
    if not text:
        return default
    found = store_id(text)
    if found is None:
        raise ValueError(f"{name} must be an id (a whole number from 0 to 2^31-1)")
    return found


class BadJSON(ValueError):
    """A request body that is not JSON the relay can read: the message starts with "invalid JSON: "."""


async def json_body(request: Request) -> Any:
    """The request's body as JSON, or BadJSON: not Unicode, not JSON (numbers over 4300 digits included),
    nested deeper than MAX_DEPTH, or holding a string with a lone surrogate (\\udc80: JSON can spell it,
    but it is not text, and nothing can store or send it)."""
    body = await request.body()
    try:
        value = json.loads(body)  # UTF-8, with or without a byte order mark, UTF-16 or UTF-32 (RFC 8259, 8.1)
    except UnicodeDecodeError:
        raise BadJSON("invalid JSON: the body is not UTF-8, UTF-16 or UTF-32") from None
    except RecursionError:
        raise BadJSON(f"invalid JSON: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:  # json.JSONDecodeError, and int()'s limit on digits
        raise BadJSON(f"invalid JSON: {exc}") from None
    _check(value)
    return value


def _check(value: Any) -> None:
    """Depth and text of every value in `value`, without recursion (its depth is what is checked)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > MAX_DEPTH:
                raise BadJSON(f"invalid JSON: nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                stack.extend((key, depth) for key in item)
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise BadJSON("invalid JSON: a string holds a lone surrogate (such as \\udc80), which is "
                              "not text") from None
