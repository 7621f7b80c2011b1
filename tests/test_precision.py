"""Precision (issue 11): ordinary mentoring messages arrive byte-identical in their text.

tests/data/precision/ holds 311 ordinary messages in five languages (en, es, fr, ru, ar). Each goes
through the relay's own line (anonymise, inspect, the shipped adult-professional policy's rules:
relay.pipeline.prepare) for pairs whose enrolled names are also ordinary words or place names ("Will",
"Rose", "Luz", "Pierre", "Вера", "أمل"; "Jordan", "Lima", "Santiago", "Paris"). A message is damaged
when its delivered text differs from what was written, or when the contact rule or the identity rule
reports a name or address in it. The identity rule also reports, by default (common_word_parts:
every_form), each ordinary use of a name part that is a word or a place ("I will", "in Lima"), so the
shipped policy holds those for a moderator: that is counted apart, as the hold rate, not as damage (the
text is intact; a program can choose `common_word_parts: judged`). Run with -s to see both figures:

    .venv/bin/python -m pytest tests/test_precision.py -q -s
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

from relay.anonymize.message import parse
from relay.anonymize.scrub import Identity
from relay.moderation.inspection import PairStats
from relay.moderation.policy import parse_policy
from relay.pipeline import prepare
from tests.support import REPO

LANGUAGES = ("en", "es", "fr", "ru", "ar")
PAIRS = (
    (("Will Jordan", "will.jordan@mail.example"), ("Rose Lima", "rose.lima@mail.example")),
    (("Luz Santiago", "luz.santiago@mail.example"), ("Pierre Paris", "pierre.paris@mail.example")),
    (("Вера Романова", "vera.r@mail.example"), ("أمل نور", "amal.n@mail.example")),
)
POLICY = parse_policy(REPO / "policies" / "adult-professional.yaml")
held_for_words: list[str] = []


def corpus() -> list[tuple[str, str]]:
    folder = REPO / "tests" / "data" / "precision"
    return [(lang, line) for lang in LANGUAGES
            for line in (folder / f"{lang}.txt").read_text("utf-8").splitlines() if line.strip()]


def _through(text: str, mentor: tuple[str, str], mentee: tuple[str, str]) -> tuple[str, list[str]]:
    message = EmailMessage()
    message["From"] = f"{mentee[0]} <{mentee[1]}>"
    message["To"] = "oak.1@relay.test"
    message["Subject"] = "news"
    message.set_content(text + "\n")
    sender = Identity(mentee[1], mentee[0], "maple.1@relay.test", "Maple")
    recipient = Identity(mentor[1], mentor[0], "oak.1@relay.test", "Oak")
    context = {"sender_email": mentee[1], "sender_name": mentee[0], "recipient_email": mentor[1],
               "recipient_name": mentor[0], "domain": "relay.test",
               "aliases": ("maple.1@relay.test", "oak.1@relay.test"), "stats": PairStats(5, 1)}
    prepared = prepare(parse(message.as_bytes()), sender=sender, recipient=recipient, thread_map={},
                       new_message_id="<n@relay.test>", now=datetime(2026, 11, 4, tzinfo=UTC), domain="relay.test",
                       policy=POLICY, context=context)
    delivered = parse(prepared.raw).get_body(("plain",))
    assert delivered is not None
    flagged = [f"{r.finding.rule}:{r.finding.kind}:{r.finding.match}" for r in prepared.decision.reasons
               if r.finding.rule in ("identity", "contact_info")]
    words = [f for f in flagged if f.startswith("identity:") and f.endswith("_word:" + f.rsplit(":", 1)[1])]
    held_for_words.extend(words)
    flagged = [f for f in flagged if f not in words]
    return delivered.get_content().rstrip("\n"), flagged


def test_ordinary_messages_arrive_byte_identical() -> None:
    messages = corpus()
    assert len(messages) >= 300 and len({lang for lang, _ in messages}) >= 5
    damaged: list[str] = []
    held = 0
    for lang, text in messages:
        held_for_words.clear()
        for mentor, mentee in PAIRS:
            delivered, flagged = _through(text, mentor, mentee)
            if delivered != text or flagged:
                damaged.append(f"[{lang}] {text!r} -> {delivered!r} {flagged}")
                break
        held += bool(held_for_words)
    print(f"\nprecision corpus: {len(messages)} messages in {len(LANGUAGES)} languages, {len(PAIRS)} pairs each; "
          f"damaged {len(damaged)} ({len(damaged) / len(messages):.2%}); held for a moderator because a name part "
          f"is an ordinary word or place there, for at least one pair: {held} ({held / len(messages):.2%})")
    for line in damaged:
        print("  " + line)
    assert len(damaged) * 300 <= len(messages), "\n".join(damaged)
