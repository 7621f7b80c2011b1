"""Time zones and quiet hours: whose local time counts, and whether it is night there."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
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


def away_ends(member: Member, zone: ZoneInfo) -> datetime | None:
    """When the member's last announced away period ends (or ended): the start of the day after away_until in
    their time zone, the moment is_away turns false; None when no away date is recorded (or an unreadable one)."""
    if member.away_until is None:
        return None
    try:
        last = date.fromisoformat(member.away_until)
    except ValueError:
        return None
    return datetime.combine(last + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


def waits_since(delivered_at: datetime, member: Member, zone: ZoneInfo) -> datetime:
    """Since when a message delivered at `delivered_at` has waited for `member`'s answer: an announced away
    period is not neglect, so a message that reached them before or while they were away waits from their
    return (the stages of the reminders start again from there)."""
    ends = away_ends(member, zone)
    return delivered_at if ends is None else max(delivered_at, ends)
