"""Name parts that are also words: given names are not "common words", and what the scrub leaves is held.

A mentee named Jane Smith writes "Jane told me": "jane" used to be in the common-word list (a lower-case
Hunspell entry, frequent in wordfreq only as the name), so the sentence-initial rule left it. A member whose
name is a place ("Pierre Paris") writes "talk to Paris": the place-word rule leaves it, so the identity rule
must report it and the shipped policy hold the message.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from relay.anonymize.common import is_common_word
from relay.anonymize.message import parse
from relay.anonymize.scrub import Identity, Scrubber
from relay.moderation.inspection import PairStats
from relay.moderation.policy import parse_policy
from relay.pipeline import prepare
from tests.decode_all import leaks
from tests.support import REPO

DOMAIN = "relay.test"
NOW = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
JANE = Identity("jane.smith@school.example", "Jane Smith", f"fern.a1@{DOMAIN}", "Fern")
JORDAN = Identity("jlee@family.example", "Jordan Lee", f"birch.b2@{DOMAIN}", "Birch")
PIERRE = Identity("pierre.p@maison.example", "Pierre Paris", f"cedar.c3@{DOMAIN}", "Cedar")
WILL = Identity("will.j@mail.example", "Will Jordan", f"ash.d4@{DOMAIN}", "Ash")


@pytest.mark.parametrize("name", ["jane", "john", "maria", "anna", "jack", "jordan"])
def test_given_names_are_not_common_words(name: str) -> None:
    assert not is_common_word(name)


@pytest.mark.parametrize("word", ["will", "hope", "rose", "luz", "mark"])
def test_true_common_words_stay(word: str) -> None:
    assert is_common_word(word)


@pytest.mark.parametrize("text", ["Jane told me the essay is due.", "Jane here! Quick question.",
                                  "jane here", "Thanks. Jane will send it."])
def test_sentence_initial_first_name_is_replaced(text: str) -> None:
    out = Scrubber([JANE, JORDAN]).text(text)
    assert "jane" not in out.casefold(), out
    assert "Fern" in out


def test_talk_to_jordan_is_replaced() -> None:
    out = Scrubber([JORDAN, JANE]).text("You should talk to Jordan about it.")
    assert "jordan" not in out.casefold() and "Birch" in out, out


def _prepare(sender: Identity, recipient: Identity, body: str) -> tuple[bytes, object]:
    message = EmailMessage()
    message["From"] = sender.email
    message["To"] = recipient.alias_address
    message["Subject"] = "Re: plans"
    message["Message-ID"] = "<m1@school.example>"
    message.set_content(body)
    parsed = parse(message.as_bytes())
    context = {"sender_role": "mentee", "sender_email": sender.email, "sender_name": sender.name,
               "recipient_email": recipient.email, "recipient_name": recipient.name,
               "sender_nicknames": (), "recipient_nicknames": (), "region": "US", "domain": DOMAIN,
               "aliases": (sender.alias_address, recipient.alias_address), "stats": PairStats(5, 1)}
    prepared = prepare(parsed, sender=sender, recipient=recipient, thread_map={}, new_message_id=f"<n@{DOMAIN}>",
                       now=NOW, domain=DOMAIN, policy=parse_policy(REPO / "policies" / "adult-professional.yaml"),
                       context=context)
    return prepared.raw, prepared.decision


def test_place_name_left_by_the_scrub_is_held_by_the_identity_rule() -> None:
    _delivered, decision = _prepare(JANE, PIERRE, "I will talk to Paris about the trip next week.")
    assert decision.action == "hold", decision.reason_dicts()  # type: ignore[attr-defined]
    reasons = decision.reason_dicts()  # type: ignore[attr-defined]
    assert any(r["rule"] == "identity" and r["kind"] == "partner_name_word" for r in reasons), reasons


def test_lower_case_common_word_name_is_held_not_damaged() -> None:
    delivered, decision = _prepare(WILL, JANE, "Hope you are well, I will send the draft tomorrow.")
    assert b"I will send" in delivered  # the word is not replaced
    assert decision.action == "hold"  # type: ignore[attr-defined]
    assert any(r["kind"] == "own_name_word" for r in decision.reason_dicts())  # type: ignore[attr-defined]


def test_plain_message_without_names_is_delivered_clean() -> None:
    delivered, decision = _prepare(JANE, PIERRE, "Jane here! The essay on photosynthesis is attached below.")
    assert decision.action == "deliver", decision.reason_dicts()  # type: ignore[attr-defined]
    assert not leaks(delivered, ["Jane", "Smith", "jane.smith", "school.example"])


DOE = Identity("jane.doe@mail.example", "Jane Doe", f"oak.e5@{DOMAIN}", "Oak")


@pytest.mark.parametrize("text", [
    "Do you have time on Friday? I do, so let's do it.",
    "DO NOT forget the draft. What do you think?",
])
def test_the_word_do_is_not_the_surname_doe(text: str) -> None:
    """"Doe" read as "Dö" with the umlaut written out made every "do" the surname (seen in bench/throughput.py)."""
    for sender, recipient in ((DOE, JANE), (JANE, DOE)):
        delivered, decision = _prepare(sender, recipient, text)
        reasons = decision.reason_dicts()  # type: ignore[attr-defined]
        assert not [r for r in reasons if r["rule"] == "identity"], reasons
        assert decision.action == "deliver", reasons  # type: ignore[attr-defined]
        assert text.split("?")[0].encode() in delivered


@pytest.mark.parametrize("text", ["Best wishes from the Doe family.", "MS. DOE WILL CALL."])
def test_the_surname_doe_is_still_reported(text: str) -> None:
    """The surname in any case is still the member's: replaced by the scrub, or reported by the identity rule."""
    for sender, recipient, kind in ((DOE, JANE, "own_name"), (JANE, DOE, "partner_name")):
        delivered, decision = _prepare(sender, recipient, text)
        reasons = decision.reason_dicts()  # type: ignore[attr-defined]
        reported = [r for r in reasons if r["rule"] == "identity" and r["kind"].startswith(kind)]
        assert reported or not re.search(rb"doe", delivered, re.IGNORECASE), (delivered, reasons)


def test_an_umlaut_written_out_inside_a_name_still_matches() -> None:
    mueller = Identity("k.mueller@mail.example", "Karl Mueller", f"elm.f6@{DOMAIN}", "Elm")
    delivered, _decision = _prepare(mueller, JANE, "Herr Müller hat angerufen.")
    assert "Müller".encode() not in delivered and b"M=C3=BCller" not in delivered, delivered
