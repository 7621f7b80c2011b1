"""/metrics: the relay's Prometheus exposition (relay.metrics) for a scraper. It holds counts only, no
mail, and needs no login, so it answers only clients in console.metrics_networks (default: loopback)."""

from __future__ import annotations

from ipaddress import ip_address

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from relay.console.web import context
from relay.metrics import CONTENT_TYPE, exposition


def _allowed(request: Request) -> bool:
    try:
        client = ip_address(request.client.host if request.client else "")
    except ValueError:
        return False
    return any(client in network for network in context(request).settings.relay.console.metrics_networks)


async def metrics(request: Request) -> Response:
    if not _allowed(request):
        return PlainTextResponse("metrics are served to the networks in console.metrics_networks only\n",
                                 status_code=403)
    ctx = context(request)
    return Response(await exposition(ctx.engine, ctx.clock), media_type=CONTENT_TYPE)
