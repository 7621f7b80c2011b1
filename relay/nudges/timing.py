"""Time zones and quiet hours: whose local time counts, and whether it is night there."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from relay.config import ProgramConfig
from relay.store.pairs import Member


def zone_of(member: Member | None, program: ProgramConfig) -> ZoneInfo:
    """The member's own time zone from enrolment, else the program's (the coordinator's too)."""
    return ZoneInfo(member.timezone if member is not None and member.timezone else program.timezone)


def local_date(now: datetime, zone: ZoneInfo) -> date:
    return now.astimezone(zone).date()


def is_quiet(now: datetime, zone: ZoneInfo, quiet: tuple[time, time] | None) -> bool:
    """True during the quiet hours in `zone`; a span such as 21:00-08:00 runs over midnight."""
    if quiet is None:
        return False
    start, end = quiet
    clock = now.astimezone(zone).time().replace(tzinfo=None)
    if start <= end:
        return start <= clock < end
    return clock >= start or clock < end


def is_away(member: Member, now: datetime, zone: ZoneInfo) -> bool:
    """Away through the day named in away_until, in the member's own time zone."""
    return member.away_until is not None and local_date(now, zone).isoformat() <= member.away_until
