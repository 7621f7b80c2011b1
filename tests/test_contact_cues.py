"""Contact-detail cues in Spanish, French, Russian and Arabic (relay/moderation/rules/data/contact_cues.yaml):
"llámame al", "mon pseudo", "мой телеграм", "سنابي", numbers spelt out in words. Labelled messages per
language (tests/data/contact_cues_labelled.jsonl, written for this project): each that gives a contact
detail is found, none of the ordinary ones is; and through the relay, the first are held and the second
delivered."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime

import pytest

from relay.clock import FixedClock
from relay.moderation.rules.contact_cues import parse, shipped
from relay.moderation.rules.contact_info import find_contact_info
from relay.store.held import list_held
from tests.nudging import enrol, running, write_program
from tests.support import DOMAIN, REPO, Layout, Sink, eventually, send, simple_message

LABELLED = REPO / "tests" / "data" / "contact_cues_labelled.jsonl"
LANGUAGES = ("es", "fr", "ru", "ar")


def labelled() -> list[dict[str, object]]:
    return [json.loads(line) for line in LABELLED.read_text("utf-8").splitlines() if line.strip()]


def test_every_language_has_both_kinds_of_labelled_messages() -> None:
    counts = Counter((row["lang"], row["contact"]) for row in labelled())
    for language in LANGUAGES:
        assert counts[(language, True)] >= 8 and counts[(language, False)] >= 8, (language, counts)


@pytest.mark.parametrize("language", LANGUAGES)
def test_contact_details_are_found_and_ordinary_sentences_left_alone(language: str) -> None:
    missed, flagged = [], []
    for row in labelled():
        if row["lang"] != language:
            continue
        findings = find_contact_info(str(row["text"]), region="US")
        if row["contact"] and not findings:
            missed.append(row["text"])
        if not row["contact"] and findings:
            flagged.append((row["text"], [(f.kind, f.match) for f in findings]))
    assert missed == [] and flagged == [], {"missed": missed, "flagged": flagged}


def test_the_handle_or_number_itself_is_what_is_found() -> None:
    def found(text: str) -> list[tuple[str, str]]:
        return [(f.kind, f.match) for f in find_contact_info(text, region="US")]

    assert found("Мой ник в дискорде lunasol") == [("handle", "lunasol")]
    assert found("Mi usuario de Discord es lunasol, búscame allí.") == [("handle", "lunasol")]
    assert found("حسابي على انستا lunasol") == [("handle", "lunasol")]
    assert found("Appelle-moi au 06 12 34 56 78 ce soir.") == [("phone", "06 12 34 56 78")]
    assert found("راسلني على واتساب ٠٧٩١٢٣٤٥٦٧") == [("phone", "٠٧٩١٢٣٤٥٦٧")]  # Arabic-Indic digits
    # an order number stays a reference in every language, whichever side "number" is written on
    for text in ("Mi pedido número 48213977", "Ma commande numéro 48213977", "Номер заказа 48213977",
                 "رقم الطلب 48213977"):
        assert found(text) == [], text


def test_the_cue_data_is_checked() -> None:
    cues = shipped()
    assert "llámame" in cues.words("phone") and cues.digits["восемь"] == 8
    with pytest.raises(ValueError, match=r"fr\.reference: expected a list of words"):
        parse({"fr": {"reference": [False]}})  # YAML reads a bare `no` as false
    with pytest.raises(ValueError, match=r"es: unknown cue kind 'phones'"):
        parse({"es": {"phones": ["llámame"]}})
    with pytest.raises(ValueError, match=r"ru\.digits: expected word: digit"):
        parse({"ru": {"digits": {"десять": 10}}})


async def test_through_the_relay_contacts_are_held_and_ordinary_mail_delivered(layout: Layout, sink: Sink) -> None:
    (layout.root / "policies" / "hold-contacts.yaml").write_text(
        "name: hold-contacts\ndefault_action: deliver\nrules:\n  contact_info:\n    action: hold\n")
    write_program(layout, policy="hold-contacts")
    rows = labelled()
    chosen = [next(r for r in rows if r["lang"] == language and r["contact"] is contact)
              for language in LANGUAGES for contact in (True, False)]
    clock = FixedClock(datetime(2026, 6, 1, 14, 0, tzinfo=UTC))
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, ("oak.mentor@uni.example.net", "Josef Brandt", "Oak", None),
                           ("maple.student@mail.example.org", "Jane Doe", "Maple", None))
        sender, to = pair.mentee.email, pair.mentor.alias_address(DOMAIN)
        for index, row in enumerate(chosen):
            message = simple_message(sender, to, f"message {index}", str(row["text"]))
            code, text = await send(relay.settings.relay.smtp.port, message, sender, to)
            assert code == 250, text
        ordinary = {f"message {i}" for i, row in enumerate(chosen) if not row["contact"]}
        await eventually(lambda: ordinary <= {str(r.message["Subject"]) for r in sink.received}, timeout=20)
        async with relay.engine.connect() as connection:
            held = {item["subject"] for item in await list_held(connection)}
    assert held == {f"message {i}" for i, row in enumerate(chosen) if row["contact"]}
    delivered = {str(r.message["Subject"]) for r in sink.received if r.rcpt_tos == [pair.mentor.email]}
    assert delivered == ordinary
