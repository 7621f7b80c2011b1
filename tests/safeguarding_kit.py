"""Helpers of the safeguarding tests: a program on the shipped youth-strict policy (its urgent lists as
shipped, copied from policies/) with a safeguarding lead, the five people who may receive mail, and what
each of them received in the loopback sink."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

import yaml

from tests.support import MENTEE, MENTOR, REPO, Layout, Sink, send, simple_message

LEAD = "lead@school.example"
COORDINATOR = "coordinator@school.example"
MODERATORS = "moderators@example.org"  # as the shipped policies name them
HELP_TEXT = "If you are in danger now, call 999. Childline is free on 0800 1111, any time."
# The program's help text per language, as docs/configuration.md asks of a program with children of several
# languages: HELP_TEXT is the default (English, and every language not listed).
HELP_TEXTS = {
    "default": HELP_TEXT,
    "es": "Si estás en peligro ahora, llama al 999. Childline es gratis en el 0800 1111, a cualquier hora.",
    "fr": "Si tu es en danger maintenant, appelle le 999. Childline est gratuit au 0800 1111, à toute heure.",
    "ar": "إذا كنت في خطر الآن، اتصل بالرقم 999. خط Childline مجاني على الرقم 0800 1111 في أي وقت.",
    "ru": "Если тебе сейчас грозит опасность, звони 999. Childline — бесплатно, 0800 1111, в любое время.",
}
PUBLIC_URL = "http://review.school.example"  # console.public_url, the base of links in mail (tests talk HTTP)
REAL = [MENTOR["email"], MENTEE["email"], MENTOR["name"], MENTEE["name"], "Müller", "Jane Doe"]


def use_shipped_policy(layout: Layout, policy: str = "youth-strict", *, lead: bool = True, **program: Any) -> None:
    """The layout's program `stem` on a shipped policy, with a safeguarding lead (or without: lead=False), and
    the console's public address set, so that mail carries console links."""
    layout.overrides["console"] = {"public_url": PUBLIC_URL}
    layout.write()
    shutil.copy(REPO / "policies" / f"{policy}.yaml", layout.root / "policies" / f"{policy}.yaml")
    path = layout.root / "programs" / "stem.yaml"
    data = yaml.safe_load(path.read_text())
    data["policy"] = policy
    if lead:
        data["safeguarding"] = {"lead": LEAD, "help_text": HELP_TEXTS, "urgent_review_within": "1h"}
    data.update(program)
    path.write_text(yaml.safe_dump(data, allow_unicode=True))


@dataclass
class Inboxes:
    """What each person received, by role."""

    sink: Sink

    def of(self, address: str) -> list[EmailMessage]:
        return [r.message for r in self.sink.received if r.rcpt_tos == [address]]

    @property
    def mentor(self) -> list[EmailMessage]:
        return self.of(MENTOR["email"])

    @property
    def mentee(self) -> list[EmailMessage]:
        return self.of(MENTEE["email"])

    @property
    def moderators(self) -> list[EmailMessage]:
        return self.of(MODERATORS)

    @property
    def lead(self) -> list[EmailMessage]:
        return self.of(LEAD)

    @property
    def coordinator(self) -> list[EmailMessage]:
        return self.of(COORDINATOR)

    def counts(self) -> dict[str, int]:
        return {name: len(getattr(self, name)) for name in ("mentor", "mentee", "moderators", "lead", "coordinator")}


def text(message: EmailMessage) -> str:
    return str(message.get_content()).replace("\r\n", "\n")


def leaks(message: EmailMessage) -> list[str]:
    """Real names and addresses of the participants found anywhere in a mail (headers included)."""
    whole = str(message) + text(message)
    return [value for value in REAL if value in whole]


async def write(layout: Layout, pair: dict[str, Any], body: str, *, subject: str = "hello",
                sender: dict[str, str] = MENTEE, mail_from: str | None = None) -> str:
    """A participant writes to their partner's alias (the mentee's when the sender is MENTOR, else the
    mentor's); returns the queue id (250 asserted)."""
    alias = pair["mentee_alias"] if sender is MENTOR else pair["mentor_alias"]
    raw = simple_message(f"{sender['name']} <{sender['email']}>", alias, subject, body)
    code, reply = await send(layout.smtp_port, raw, mail_from or sender["email"], alias)
    assert code == 250, reply
    return reply.rsplit(" ", 1)[-1]
