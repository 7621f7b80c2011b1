"""First start on the embedded default: enrol a demo pair and print how to send a test message."""

from __future__ import annotations

import shlex
import sys

from relay.clock import Clock
from relay.config import Settings
from relay.enrol import Person, create_pair
from relay.store.pairs import Pair, count_pairs

DEMO_PROGRAM = "demo"
MENTOR = Person(email="mentor@example.org", name="Alex Rivera", handle="Oak")
MENTEE = Person(email="mentee@example.org", name="Sam Lee", handle="Maple")


async def enrol_demo_pair(settings: Settings, engine, clock: Clock) -> Pair | None:  # type: ignore[no-untyped-def]
    """Create the demo pair when the store has no pair yet and the config asks for a demo."""
    if not settings.relay.demo or DEMO_PROGRAM not in settings.programs:
        return None
    async with engine.connect() as connection:
        if await count_pairs(connection):
            return None
    return await create_pair(settings, engine, clock, program_id=DEMO_PROGRAM, mentor=MENTOR, mentee=MENTEE,
                             actor="demo")


def banner(settings: Settings, pair: Pair, host: str, port: int) -> str:
    domain = settings.relay.domain
    mentor_alias = pair.mentor.alias_address(domain)
    mentee_alias = pair.mentee.alias_address(domain)
    script = (
        "import smtplib; from email.message import EmailMessage; m = EmailMessage(); "
        f'm["From"] = "{MENTEE.name} <{MENTEE.email}>"; m["To"] = "{mentor_alias}"; '
        'm["Subject"] = "Hello from your mentee"; '
        f'm.set_content("Hi! I am {MENTEE.name}, write to me at {MENTEE.email}."); '
        f'print(smtplib.SMTP("{host}", {port}).send_message(m) or "sent")'
    )
    where = settings.resolve(settings.relay.delivery.maildir) / MENTOR.email / "new"
    lines = [
        "",
        f"Demo pair {pair.id} enrolled in program '{pair.program_id}':",
        f"  mentor {MENTOR.name} <{MENTOR.email}>  is reached at  {mentor_alias}  (handle {pair.mentor.handle})",
        f"  mentee {MENTEE.name} <{MENTEE.email}>  is reached at  {mentee_alias}  (handle {pair.mentee.handle})",
        "Send a test message as the mentee, from another terminal:",
        f"  {shlex.quote(sys.executable)} -c {shlex.quote(script)}",
        f"The mentor's copy (anonymised) appears in {where}",
        "",
    ]
    return "\n".join(lines)
