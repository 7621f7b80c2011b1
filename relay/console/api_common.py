"""What every endpoint of the JSON API shares: JSON responses, errors, and the account of the bearer
token (`Authorization: Bearer <token>`; session cookies are not accepted, so no CSRF token is needed)."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from relay.console.accounts import Moderator, get_by_token
from relay.console.web import context


def json_response(data: Any, status_code: int = 200) -> Response:
    return Response(json.dumps(data, default=_default, ensure_ascii=False), status_code=status_code,
                    media_type="application/json")


def _default(value: Any) -> Any:
    if hasattr(value, "isoformat"):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def error(status_code: int, text: str) -> Response:
    return json_response({"error": text}, status_code)


async def user_of(request: Request) -> Moderator | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    async with context(request).engine.connect() as connection:
        return await get_by_token(connection, token.strip())


def unauthorised() -> Response:
    return JSONResponse({"error": "an API token is needed: Authorization: Bearer <token>"}, status_code=401,
                        headers={"www-authenticate": "Bearer"})
