"""Names as a partner types them, and ordinary words that are also names.

A partner types a member's name on the keyboard at hand: "Lukasz Wojcik" for Łukasz Wójcik, "Soren" for
Søren, "Duc" for Đức (letters whose stroke or bar is no combining mark, so accents folding alone kept
them); "فاطمه" for فاطمة, "مصطفي" for مصطفى, "علی" on a Persian keyboard for علي. Each reached the mentor,
and the identity rule, which uses the same matcher, held nothing. The other way round, a name that is also
a word replaced that word in ordinary sentences: "it's sunny today" -> "it's Maple today", "انا سعيد جدا"
(I am very happy), "я верю в тебя" (I believe in you: "верю" read as a case of Вера), "muy linda".

Messages go through the relay's own line (relay.pipeline.prepare: anonymise, inspect, the shipped
supervised policy, past its first messages), with the text in the subject, the body and a .txt attachment.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from relay.anonymize.message import parse
from relay.anonymize.scrub import Identity, Scrubber
from relay.moderation import Decision
from relay.moderation.inspection import PairStats
from relay.moderation.policy import parse_policy
from relay.pipeline import prepare
from tests.support import REPO

DOMAIN = "relay.test"
NOW = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
POLICY = parse_policy(REPO / "policies" / "supervised.yaml")
MENTOR = Identity("pat.m@uni.example.net", "Pat Mentorson", f"oak.a1@{DOMAIN}", "Oak")


def _member(name: str) -> Identity:
    return Identity("kid@mail.example.org", name, f"maple.b2@{DOMAIN}", "Maple")


def _through(sender: Identity, text: str) -> tuple[dict[str, str], Decision]:
    """What the mentor would read (subject, body, attachment) of a message with `text` in all three, and
    the moderation decision."""
    message = EmailMessage()
    message["From"] = sender.email
    message["To"] = sender.alias_address
    message["Subject"] = text.split(". ")[0]
    message["Message-ID"] = "<m1@mail.example.org>"
    message.set_content(text)
    message.add_attachment(f"Homework by {text}\n", subtype="plain", filename="homework.txt")
    context = {"sender_role": "mentee", "sender_email": sender.email, "sender_name": sender.name,
               "recipient_email": MENTOR.email, "recipient_name": MENTOR.name, "sender_nicknames": (),
               "recipient_nicknames": (), "region": "US", "domain": DOMAIN,
               "aliases": (sender.alias_address, MENTOR.alias_address), "stats": PairStats(5, 1)}
    prepared = prepare(parse(message.as_bytes()), sender=sender, recipient=MENTOR, thread_map={},
                       new_message_id=f"<n@{DOMAIN}>", now=NOW, domain=DOMAIN, policy=POLICY, context=context)
    delivered = parse(prepared.raw)
    texts = {"subject": str(delivered["Subject"])}
    for part in delivered.walk():
        if part.get_content_maintype() == "text":
            texts[part.get_filename() or "body"] = str(part.get_content()).strip()
    assert set(texts) == {"subject", "body", "homework.txt"}, texts
    return texts, prepared.decision


@pytest.mark.parametrize("name, text, typed", [
    ("Łukasz Wójcik", "Cześć, tu Lukasz Wojcik. Lukasz here again!", ["Lukasz", "Wojcik"]),
    ("Søren Ødegård", "Hi, Soren Odegard here. Greetings from Soren (Soeren for my gran)",
     ["Soren", "Soeren", "Odegard"]),
    ("Đức Nguyễn", "Hi, it's Duc Nguyen. See you on Thursday, Duc", ["Duc", "Nguyen"]),
    ("فاطمة الزهراء", "مرحبا، انا فاطمه الزهراء. مع السلام، فاطمه", ["فاطمه", "الزهراء"]),
    ("مصطفى الشناوي", "مرحبا، انا مصطفي الشناوى. شكرا، مصطفي", ["مصطفي", "الشناوى"]),  # ى and ي swapped
    ("علي الحسيني", "سلام، انا علی الحسینی. الحسینی", ["علی", "الحسینی"]),  # a Persian or Urdu keyboard's ی
    ("كريم الحسيني", "انا کریم الحسینی. شكرا، کریم", ["کریم", "الحسینی"]),  # and its ک
])
def test_a_name_typed_without_its_own_letters_is_gone_from_subject_body_and_attachment(
        name: str, text: str, typed: list[str]) -> None:
    delivered, decision = _through(_member(name), text)
    for where, value in delivered.items():
        assert not [word for word in typed if word in value], (where, value, decision.reason_dicts())
        assert "Maple" in value, (where, value)


def test_a_lone_first_name_that_is_also_a_word_is_replaced_or_held() -> None:
    """"Duc" is also a French word (a duke), so "Duc here." at a sentence's start may be the word: it is left,
    and the identity rule holds the message for a moderator instead of letting it through."""
    delivered, decision = _through(_member("Đức Nguyễn"), "Hi, it's Duc Nguyen. Duc here.")
    assert "Nguyen" not in delivered["body"] and "Maple" in delivered["body"]
    reasons = decision.reason_dicts()
    assert decision.action == "hold" and any(r["rule"] == "identity" and r["match"] == "Duc" for r in reasons)


@pytest.mark.parametrize("name, typed", [
    ("Lætitia Ménard", "Laetitia Menard"), ("Chloé Bœuf", "Chloe Boeuf"), ("Ægir Þórsson", "Aegir Thorsson"),
    ("Guðrún Sigurðardóttir", "Gudrun Sigurdardottir"), ("Mariella Ħili", "Mariella Hili"),
    ("Işıl Yıldız", "Isil Yildiz"), ("Jürgen Weiß", "Jurgen Weiss"), ("Marta Łęcka", "Marta Lecka"),
    ("Ngozi Ɗanjuma", "Ngozi Danjuma"), ("Kwabena Ɔfori", "Kwabena Ofori"), ("Əli Məmmədov", "Ali Mammadov"),
    ("Åse Kjær", "Aase Kjaer"), ("Trần Đình Phương", "Tran Dinh Phuong"),
])
def test_letters_with_a_stroke_or_ligature_match_their_plain_letters(name: str, typed: str) -> None:
    kid = _member(name)
    out = Scrubber([kid, MENTOR]).text(f"Thanks!\n\n{typed}\nand {typed.upper()} in capitals")
    assert not [word for word in typed.split() if word.lower() in out.lower()], out


@pytest.mark.parametrize("name, text, word", [
    ("Sunny Patel", "it's sunny today, so we did the experiment outside", "sunny"),
    ("سعيد حداد", "انا سعيد جدا بالنتيجة، شكرا على المساعدة", "سعيد"),  # I am very happy with the result
    ("Вера Соколова", "я верю в тебя, ты справишься с экзаменом", "верю"),  # I believe in you
    ("Linda Gómez", "la ciudad es muy linda, fuimos al museo", "linda"),  # the city is very pretty
    ("Claire Dubois", "c'est une idée claire et belle", "claire"),
    ("Bella Rosa", "una flor rosa muy bella", "bella"),
])
def test_an_ordinary_word_that_is_also_the_name_is_left_whole(name: str, text: str, word: str) -> None:
    delivered, _decision = _through(_member(name), text)
    for where, value in delivered.items():
        assert text in value and "Maple" not in value, (where, value)


@pytest.mark.parametrize("name, text", [
    ("Sunny Patel", "hi! it's Sunny here"), ("Sunny Patel", "my name is sunny"),
    ("سعيد حداد", "انا سعيد حداد"), ("سعيد حداد", "اسمي سعيد"), ("سعيد حداد", "مرحبا سعيد"),
    ("سعيد حداد", "شكرا، سعيد"),  # after a greeting and the Arabic comma
    ("Вера Соколова", "я Вера"), ("Вера Соколова", "меня зовут вера"), ("Linda Gómez", "me llamo linda"),
    ("Linda Gómez", "Gracias,\nLinda"),
])
def test_the_same_word_used_as_the_name_is_still_replaced(name: str, text: str) -> None:
    out = Scrubber([_member(name), MENTOR]).text(text)
    assert "Maple" in out, out


@pytest.mark.parametrize("text, form", [
    ("Привет от Веры", "Веры"), ("Передай Вере привет", "Вере"), ("Я видел Веру вчера", "Веру"),
    ("Мы говорили с Верой", "Верой"), ("с Верою", "Верою"), ("у Соколовой", "Соколовой"),
    ("Соколову", "Соколову"), ("Ваш Соколов", "Соколов"),  # the surname in the other gender: her family's
])
def test_russian_case_forms_of_the_name_are_replaced(text: str, form: str) -> None:
    out = Scrubber([_member("Вера Соколова"), MENTOR]).text(text)
    assert form not in out and "Maple" in out, out


@pytest.mark.parametrize("text", ["Я верю в тебя", "Верю!", "они верят нам", "Верные друзья"])
def test_a_russian_word_sharing_the_stem_is_not_a_case_of_the_name(text: str) -> None:
    """"верю" (I believe) is no case of Вера (Веры, Вере, Веру, Верой, Верою): it stays, and the identity
    rule does not report it."""
    assert Scrubber([_member("Вера Соколова"), MENTOR]).text(text) == text
    _delivered, decision = _through(_member("Вера Соколова"), text)
    assert not [r for r in decision.reason_dicts() if r["rule"] == "identity"], decision.reason_dicts()
