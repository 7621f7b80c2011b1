"""Dates, times and durations as a notice's reader expects them: Babel's formats for their language,
in their own time zone. A participant never reads a UTC timestamp in ISO form."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

from babel.dates import format_date, format_time
from babel.units import format_unit

from relay.languages import locale


def format_when(at: datetime, language: str, timezone: ZoneInfo | str) -> str:
    """"Monday, 1 June 2026, 16:00 (Europe/Berlin)"; "lunes, 1 de junio de 2026, 16:00 (Europe/Madrid)"."""
    zone = timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)
    local = at.astimezone(zone)
    return f"{_full_day(local.date(), language)}, {_short_time(local.hour, local.minute, language)} ({zone.key})"


@lru_cache(maxsize=4096)
def _full_day(day: date, language: str) -> str:
    """"Monday, 1 June 2026" (a sweep writes the dates of thousands of waiting messages: Babel is asked once
    per day and language)."""
    return format_date(day, "full", locale=locale(language))


@lru_cache(maxsize=4096)
def _short_time(hour: int, minute: int, language: str) -> str:
    """"16:00", "4:00 PM": the short time pattern shows hours and minutes only."""
    return format_time(time(hour, minute), "short", locale=locale(language))


def format_day(day: date, language: str) -> str:
    """"30 June 2026"; "30 de junio de 2026"; "30 июня 2026 г."."""
    return format_date(day, "long", locale=locale(language))


def format_duration(delta: timedelta, language: str) -> str:
    """"48 hours", "4 days", "2 weeks" (whole units, in words of the language): how long, in a short note."""
    hours = int(delta.total_seconds() // 3600)
    if hours < 1:
        return _unit(max(1, int(delta.total_seconds() // 60)), "duration-minute", language)
    if hours < 72:
        return _unit(hours, "duration-hour", language)
    days = hours // 24
    if days % 7 == 0 and days >= 14:
        return _unit(days // 7, "duration-week", language)
    return _unit(days, "duration-day", language)


@lru_cache(maxsize=4096)
def _unit(count: int, unit: str, language: str) -> str:
    """One whole amount of a unit in words (a sweep writes "3 weeks" in the same few languages thousands
    of times: Babel's formatting is looked up once per amount, unit and language)."""
    return format_unit(count, unit, length="long", locale=locale(language))
