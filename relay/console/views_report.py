"""/report: a program's figures (relay.reports.figures, the same as `mentor-relay report`) with small
server-side SVG charts (relay.reports.charts); no JavaScript. Moderators see their own programs only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from relay.console.web import context, current_user, page, refused, to_login
from relay.reports.charts import program_charts
from relay.reports.figures import program_figures
from relay.reports.render import rows


async def report(request: Request) -> Response:
    user = await current_user(request)
    if user is None:
        return to_login(request)
    ctx = context(request)
    visible = user.visible(sorted(ctx.settings.programs))
    chosen = request.query_params.get("program") or (visible[0] if visible else "")
    if chosen not in visible:  # another program's figures are as private as its mail
        return refused(request, user, 404, "Not found", "There is no such program among yours.")
    figures = await program_figures(ctx.engine, ctx.clock, chosen)
    return page(request, "report.html", user=user, programs=visible, program=chosen,
                program_name=ctx.settings.programs[chosen].name, charts=program_charts(figures),
                rows=rows(figures))
