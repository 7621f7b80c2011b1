"""Text written the way people's keyboards and clients write it: every apostrophe form, apostrophes left
out, file names in RFC 2231 encoding, a forwarded message sent in base64, Chinese names with no space around
them, Russian names in their cases, Arabic names with a joined particle.

A member's name must be gone from what the partner receives however its apostrophe was typed ("O’Brien"
from an iPhone, "O´Brien" from a Spanish keyboard, "OBrien"), whichever form it was enrolled with; and a
child's disclosure must be held as urgent however its apostrophes were typed, or left out ("dont tell
anyone", "whats your snap"). Messages go through the relay's own line (relay.pipeline.prepare: anonymise,
inspect, the shipped policy), as tests/test_leak_vectors.py drives it; one goes through a running relay.
"""

from __future__ import annotations

import io
import json
import textwrap
import zipfile
from datetime import UTC, datetime
from email.message import EmailMessage
from functools import cache
from pathlib import Path

import pytest

from relay.anonymize.message import parse
from relay.anonymize.scrub import Identity
from relay.moderation import Decision, decide
from relay.moderation.inspection import Inspection, PairStats
from relay.moderation.policy import Policy, parse_policy
from relay.pipeline import prepare
from tests.decode_all import leaks
from tests.support import REPO

DOMAIN = "relay.test"
NOW = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
# What phones, word processors and keyboards type for an apostrophe.
APOSTROPHES = {"ascii": "'", "right_quote": "\u2019", "left_quote": "\u2018", "modifier": "\u02bc",
               "acute": "\u00b4", "grave": "`", "prime": "\u2032", "fullwidth": "\uff07"}


class Member:
    """One enrolled member: their real name and address, and the alias and handle the partner sees."""

    def __init__(self, name: str, email: str, handle: str) -> None:
        self.name, self.email, self.handle = name, email, handle
        self.alias = f"{handle.lower()}.k2@{DOMAIN}"

    def identity(self) -> Identity:
        return Identity(self.email, self.name, self.alias, self.handle)


SIOBHAN = Member("Siobhan O'Brien-Ivanova", "siobhan.obrien@oakmail.example", "Maple")  # enrolled with "'"
DARA = Member("Dara O\u2019Neill", "dara.oneill@uni.example.net", "Oak")  # enrolled with "’"
# Whole words: "Brien" is found in "O'Brien", "O’Brien", "O´Brien" alike (the apostrophe is not a letter).
SIOBHAN_NEEDLES = ["Siobhan", "Brien", "OBrien", "Ivanova", SIOBHAN.email, "siobhan.obrien"]
DARA_NEEDLES = ["Dara", "Neill", "ONeill", DARA.email, "dara.oneill"]


@cache
def shipped(name: str) -> Policy:
    return parse_policy(REPO / "policies" / f"{name}.yaml")


def _message(sender: Member, partner: Member, subject: str = "Re: essay") -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"{sender.name} <{sender.email}>"
    message["To"] = partner.alias
    message["Subject"] = subject
    message["Date"] = "Wed, 04 Nov 2026 10:17:41 +0100"
    message["Message-ID"] = f"<v.{sender.handle}@client.example>"
    return message


def _plain(sender: Member, partner: Member, text: str, subject: str = "Re: essay") -> bytes:
    message = _message(sender, partner, subject)
    message.set_content(text)
    return message.as_bytes()


def _run(raw: bytes, sender: Member, partner: Member, policy: str = "adult-professional") -> tuple[bytes, Decision]:
    """The copy the partner would receive, and the moderation decision on it."""
    context = {"sender_role": "mentee", "sender_email": sender.email, "sender_name": sender.name,
               "recipient_email": partner.email, "recipient_name": partner.name, "region": "US",
               "domain": DOMAIN, "aliases": (sender.alias, partner.alias), "stats": PairStats(5, 1)}
    prepared = prepare(parse(raw), sender=sender.identity(), recipient=partner.identity(), thread_map={},
                       new_message_id=f"<new@{DOMAIN}>", now=NOW, domain=DOMAIN, policy=shipped(policy),
                       context=context)
    return prepared.raw, prepared.decision


def _delivered_clean(raw: bytes, sender: Member, partner: Member, needles: list[str]) -> bytes:
    assert leaks(raw, needles), "the message carries the name to begin with"
    delivered, decision = _run(raw, sender, partner)
    found = leaks(delivered, needles)
    assert not found, "\n".join(found)
    assert decision.action in ("deliver", "redact"), decision.reason_dicts()
    return delivered


# --- names: every apostrophe form -------------------------------------------------------------------------


@pytest.mark.parametrize("form", sorted(APOSTROPHES))
def test_a_signature_with_any_apostrophe_loses_the_name(form: str) -> None:
    a = APOSTROPHES[form]
    text = f"See you Thursday!\n\nSiobhan O{a}Brien-Ivanova\nSent from my iPhone\n\u2014 S. O{a}Brien\n"
    delivered = _delivered_clean(_plain(SIOBHAN, DARA, text), SIOBHAN, DARA, SIOBHAN_NEEDLES)
    assert "Maple" in parse(delivered).get_content()


@pytest.mark.parametrize("form", sorted(APOSTROPHES))
def test_a_name_enrolled_with_a_curly_apostrophe_goes_however_it_is_typed(form: str) -> None:
    a = APOSTROPHES[form]
    _delivered_clean(_plain(DARA, SIOBHAN, f"Thanks!\nDara O{a}Neill\n", subject=f"O{a}Neill essay draft"),
                     DARA, SIOBHAN, DARA_NEEDLES)


def test_a_name_typed_without_its_apostrophe_goes() -> None:
    _delivered_clean(_plain(SIOBHAN, DARA, "Thanks!\nS. OBrien\n\nThanks Siobhan, Mrs ONeill says hi\n"),
                     SIOBHAN, DARA, ["OBrien", "ONeill", "Siobhan"])


def test_a_docx_with_a_curly_apostrophe_loses_the_name() -> None:
    document = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.'
                'openxmlformats.org/wordprocessingml/2006/main"><w:body><w:p><w:r><w:t>Essay by </w:t></w:r>'
                '<w:r><w:t xml:space="preserve"> O\u2019Brien</w:t></w:r></w:p></w:body></w:document>')
    content_types = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
                     'package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/>'
                     '<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
                     'officedocument.wordprocessingml.document.main+xml"/></Types>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("word/document.xml", document)
    message = _message(SIOBHAN, DARA)
    message.set_content("Here is the file.\n")
    message.add_attachment(out.getvalue(), maintype="application", filename="essay.docx",
                           subtype="vnd.openxmlformats-officedocument.wordprocessingml.document")
    _delivered_clean(message.as_bytes(), SIOBHAN, DARA, ["Brien"])


# --- moderation: a disclosure however its apostrophes are typed -------------------------------------------


def _urgent_kinds(decision: Decision) -> list[str]:
    return sorted({r.finding.kind for r in decision.reasons if r.severity == "urgent"})


DISCLOSURES = [
    ("don\u00b4t tell my parents", "secrecy"),  # Spanish and German keyboards
    ("don`t tell my parents", "secrecy"),
    ("don\u02bct tell my parents", "secrecy"),
    ("DON\u2019T TELL ANYONE", "secrecy"),
    ("dont tell anyone ok", "secrecy"),
    ("its our secret", "secrecy"),
    ("cest notre secret", "secrecy"),
    ("whats your snap", "private-channel"),
    ("lets meet up on saturday", "meeting"),
    ("ill buy you a new phone", "gifts-money"),
    ("i dont feel safe at home", "abuse"),
    ("i dont want to live anymore", "self-harm"),
    ("il ma frappé hier", "abuse"),
]


@pytest.mark.parametrize("policy", ["youth-strict", "supervised"])
@pytest.mark.parametrize(("text", "kind"), DISCLOSURES)
def test_a_disclosure_typed_without_or_with_any_apostrophe_is_held_as_urgent(policy: str, text: str,
                                                                             kind: str) -> None:
    _, decision = _run(_plain(SIOBHAN, DARA, f"hi\nok so {text} lol\n"), SIOBHAN, DARA, policy)
    assert decision.action == "hold" and decision.urgent, decision.reason_dicts()
    assert kind in _urgent_kinds(decision), decision.reason_dicts()


def _keywords(tmp_path: Path, *words: str) -> Policy:
    path = tmp_path / "p.yaml"
    listed = "\n".join(f"            - {json.dumps(word)}" for word in words)  # a JSON string is YAML
    path.write_text(textwrap.dedent("""
        default_action: deliver
        rules:
          keywords:
            - name: listed
              action: hold
              words:
        """) + listed + "\n")
    return parse_policy(path)


@pytest.mark.parametrize(("words", "text", "found"), [
    (("dad",), "my dad\u2019s friend", "dad"),  # the text keeps its boundaries: "dad" in "dad's"
    (("école",), "je ne veux pas aller à l\u2019école", "école"),  # and French elisions
    (("don't tell",), "pls dont tell", "dont tell"),
    (("i'll buy you",), "I\u00b4ll buy you one", "I\u00b4ll buy you"),
    (("hell",), "he'll come", None),  # apostrophes are not dropped from the text: "he'll" is not "hell"
    (("i'll buy you",), "I will buy you one", None),  # a word boundary still holds: not inside "will"
    (("don't tell",), "condont tell", None),
])
def test_listed_phrases_keep_word_boundaries(tmp_path: Path, words: tuple[str, ...], text: str,
                                             found: str | None) -> None:
    decision = decide(_keywords(tmp_path, *words), Inspection(text=text, subject=""))
    matches = [r.finding.match for r in decision.reasons if r.finding.kind == "listed"]
    assert matches == ([found] if found else []), decision.reason_dicts()


# --- moderation: a phrase however it is spelt, its finding where it was written ---------------------------

SPELLINGS = [  # (listed, text, what the finding must cover, exactly as written)
    ("أريد أن أموت", "أنا تعبانة... أريـــد أن أمـــوت", "أريـــد أن أمـــوت"),  # tatweel
    ("أبي يضربني", "أبي يضربنـــي كل يوم", "أبي يضربنـــي"),
    ("اعتدى علي", "خالي اعتدى على امبارح", "اعتدى على"),  # alef maksura for a final yeh
    ("wanna die", "i wanna dieee", "wanna dieee"),  # stretched letters
    ("kill myself", "i just want to kill myselfff", "kill myselfff"),
    ("kill myself", "I want to KIIILL myself", "KIIILL myself"),
    ("mon beau-père me touche", "mon beau pere me touche", "mon beau pere me touche"),  # hyphen as a space
    ("mon beau-père me touche", "mon beaupère me touche", "mon beaupère me touche"),  # or as nothing
    ("mon beau-père me touche", "mon beau\u2011père me touche", "mon beau\u2011père me touche"),
    ("kill myself", "i want to kill\u200bmyself", "kill\u200bmyself"),  # a zero-width space between words
    ("kill myself", "i want to ki\u200bll myself", "ki\u200bll myself"),  # and inside one
    ("kill myself", "i want to k\u0456ll myself", "k\u0456ll myself"),  # Cyrillic і
    ("kill myself", "i want to kill 😭 myself", "kill 😭 myself"),  # an emoji between two words
    ("kill myself", "i want to kill😭myself", "kill😭myself"),
    ("kill myself", "i want to kill ❤\ufe0f myself", "kill ❤\ufe0f myself"),  # with its variation selector
    ("kill myself", "i want to k i l l myself", "k i l l myself"),  # letters set apart
    ("хочу умереть", "Я хочу умереть.", "хочу умереть"),  # Cyrillic lists still meet Cyrillic text
    ("عايزة أموت", "انا عايزه اموت", "عايزه اموت"),  # the heh most people type for a taa marbuta
    ("تعبت من الحياه", "تعبت من الحياة", "تعبت من الحياة"),  # and the other way round
    ("كلمني على الخاص", "کلمني على الخاص", "کلمني على الخاص"),  # the Persian keheh for kaf
    ("ib3atli sora", "wallah he said ib3atli sora of me", "ib3atli sora"),  # Arabizi: digits are letters there
    ("step-dad hits me", "my step dad hits me", "step dad hits me"),  # who: "step-dad" as written apart
    ("step-dad hits me", "my stepdad hits me", "stepdad hits me"),  # or together
    ("mom's boyfriend touches me", "my moms boyfriend touches me", "moms boyfriend touches me"),
]


@pytest.mark.parametrize(("words", "text", "found"), SPELLINGS)
def test_a_phrase_is_found_however_it_is_spelt_and_its_offsets_point_at_it(tmp_path: Path, words: str,
                                                                           text: str, found: str) -> None:
    decision = decide(_keywords(tmp_path, words), Inspection(text=text, subject=""))
    [finding] = [r.finding for r in decision.reasons if r.finding.kind == "listed"]
    assert (finding.match, text[finding.start:finding.end]) == (found, found)
    assert finding.start == text.index(found)


@pytest.mark.parametrize(("words", "text"), [
    (("want to die",), "i want too die"),  # a letter written twice is another word: "to" is not "too"
    (("kill myself",), "i want to k1ll myself"),  # digits are not read as letters
    (("ib3atli sora",), "ib3atli sorat el wajeb"),  # Arabizi words match whole: "sora" is not "sorat" (of)
    (("abc",), "a b cd"),  # one-letter words are joined only when each stands alone
    (("mon beau-père",), "mon beau - père"),  # a hyphen with spaces around it is punctuation
    (("he hits me",), "the hits merge"),
])
def test_the_fold_does_not_find_what_was_not_written(tmp_path: Path, words: tuple[str, ...], text: str) -> None:
    decision = decide(_keywords(tmp_path, *words), Inspection(text=text, subject=""))
    assert [r.finding.match for r in decision.reasons if r.finding.kind == "listed"] == []


def test_an_unless_phrase_cancels_the_match_it_overlaps_and_no_other(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent("""
        default_action: deliver
        rules:
          keywords:
            - name: listed
              action: hold
              words: [dad hit me]
              unless: [hit me up]
        """))
    policy = parse_policy(path)
    text = "My dad hit me up about dinner. Then my dad hit me again."
    decision = decide(policy, Inspection(text=text, subject=""))
    [finding] = [r.finding for r in decision.reasons if r.finding.kind == "listed"]
    assert (finding.match, finding.start) == ("dad hit me", text.rindex("dad hit me"))
    assert decide(policy, Inspection(text="my dad hit me up", subject="")).action == "deliver"


# --- file names in RFC 2231 encoding --------------------------------------------------------------------

JOSE = Member("José Müller", "jose.mueller@uni.example.net", "Cedar")


def _with_params(sender: Member, partner: Member, disposition: str, content_type: str = "text/plain") -> bytes:
    """A message with a small text attachment whose two headers are written as given (raw)."""
    return (f"From: {sender.name} <{sender.email}>\r\nTo: {partner.alias}\r\nSubject: cv\r\nDate: Wed, 04 Nov 2026 "
            f"10:17:41 +0100\r\nMessage-ID: <p.1@client.example>\r\nMIME-Version: 1.0\r\nContent-Type: multipart/"
            f'mixed; boundary="b0"\r\n\r\n--b0\r\nContent-Type: text/plain\r\n\r\nCV attached\r\n--b0\r\nContent-Type: '
            f"{content_type}\r\nContent-Disposition: {disposition}\r\n\r\nmy cv\r\n--b0--\r\n").encode()


def _file_names_shown(raw: bytes) -> list[str]:
    """Every parameter value of every part's Content-Type and Content-Disposition, decoded as a mail client
    decodes it (RFC 2231 percent-encoding and continuations, every repeat of a parameter, percent-encoding
    outside RFC 2231 too). Read with the stdlib's compat32 parser, which keeps repeated parameters."""
    import email
    from email.utils import collapse_rfc2231_value
    from urllib.parse import unquote

    shown: list[str] = []
    for part in email.message_from_bytes(raw).walk():
        for header in ("Content-Type", "Content-Disposition"):
            for _, value in part.get_params(header=header, failobj=[])[1:]:
                text = collapse_rfc2231_value(value)
                shown.extend([text, unquote(text)])
    return shown


@pytest.mark.parametrize(("disposition", "content_type"), [
    ("attachment; filename=\"cv.txt\";\r\n filename*=utf-8''Jos%C3%A9%20M%C3%BCller%20-%20CV.txt", "text/plain"),
    ("attachment; filename*=utf-8''Jos%C3%A9%20M%C3%BCller%20-%20CV.txt;\r\n filename=\"cv.txt\"", "text/plain"),
    ("attachment; filename*0*=utf-8''Jos%C3%A9%20; filename*1*=M%C3%BCller.txt",
     "text/plain; name*0*=utf-8''Jos%C3%A9%20;\r\n name*1*=M%C3%BCller.txt"),
    ('attachment; filename="cv.txt"', "text/plain; name=\"cv.txt\";\r\n name*=utf-8''M%C3%BCller%20CV.txt"),
], ids=["filename_star_after_plain", "filename_star_before_plain", "continuations", "name_star_in_content_type"])
def test_a_percent_encoded_file_name_loses_the_name(disposition: str, content_type: str) -> None:
    raw = _with_params(JOSE, SIOBHAN, disposition, content_type)
    needles = ["josé", "jose", "müller", "mueller"]
    assert any(n in v.casefold() for v in _file_names_shown(raw) for n in needles), "the name is there at first"
    delivered, decision = _run(raw, JOSE, SIOBHAN)
    shown = _file_names_shown(delivered)
    assert not [v for v in shown for n in needles if n in v.casefold()], shown
    assert any("Cedar" in v for v in shown), shown
    assert decision.action in ("deliver", "redact"), decision.reason_dicts()


@pytest.mark.parametrize("disposition", [
    "attachment; filename=\"cv.txt\";\r\n filename*=utf-8''Siobhan%20O%27Brien-Ivanova%20CV.txt",
    'attachment; filename="CV_O%27Brien.txt"',  # percent-encoded outside RFC 2231, as some webmail writes it
])
def test_an_apostrophe_written_as_percent_27_in_a_file_name_loses_the_name(disposition: str) -> None:
    delivered, _ = _run(_with_params(SIOBHAN, DARA, disposition), SIOBHAN, DARA)
    shown = _file_names_shown(delivered)
    assert not [v for v in shown if "brien" in v.casefold() or "siobhan" in v.casefold()], shown
    assert not leaks(delivered, SIOBHAN_NEEDLES)


# --- a forwarded message sent base64 or quoted-printable ------------------------------------------------


def _forwarded_encoded(sender: Member, partner: Member, body: str, encoding: str) -> bytes:
    """A forwarded message (message/rfc822) sent with a Content-Transfer-Encoding RFC 2046 does not allow
    there, as some clients do."""
    import base64
    import quopri

    inner = (f"From: {sender.name} <{sender.email}>\r\nTo: Coach <coach@school.example>\r\nSubject: practice\r\n"
             f"Date: Tue, 03 Nov 2026 14:00:00 +0100\r\n\r\n{body}\r\n").encode()
    encoded = (base64.encodebytes(inner) if encoding == "base64" else quopri.encodestring(inner)).decode()
    return (f"From: {sender.name} <{sender.email}>\r\nTo: {partner.alias}\r\nSubject: fwd\r\nDate: Wed, 04 Nov "
            "2026 10:17:41 +0100\r\nMessage-ID: <fwd.1@client.example>\r\nMIME-Version: 1.0\r\nContent-Type: "
            'multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nforwarding\r\n--b1\r\n'
            f"Content-Type: message/rfc822\r\nContent-Transfer-Encoding: {encoding}\r\nContent-Disposition: "
            f'attachment; filename="practice.eml"\r\n\r\n{encoded.replace(chr(10), chr(13) + chr(10))}--b1--\r\n'
            ).encode()


def _as_a_client_opens_it(raw: bytes) -> list[bytes]:
    """The delivered message, and each attached message decoded as a mail client decodes it (whatever its
    Content-Transfer-Encoding; the stdlib parser does not decode a message/* part)."""
    import email
    from email.message import Message

    opened = [raw]
    for part in email.message_from_bytes(raw).walk():
        encoding = str(part.get("Content-Transfer-Encoding", "")).lower()
        if part.get_content_maintype() == "message" and encoding in ("base64", "quoted-printable"):
            carrier = Message()
            carrier["Content-Transfer-Encoding"] = encoding
            children = part.get_payload()
            assert isinstance(children, list)
            carrier.set_payload("".join(c.as_string() for c in children if isinstance(c, Message)))
            decoded = carrier.get_payload(decode=True)
            assert isinstance(decoded, bytes)
            opened.append(decoded)
    return opened


@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
def test_a_forwarded_message_sent_encoded_loses_the_name(encoding: str) -> None:
    raw = _forwarded_encoded(SIOBHAN, DARA, "See you at practice.\r\nSiobhan O'Brien-Ivanova", encoding)
    assert any(leaks(opened, SIOBHAN_NEEDLES) for opened in _as_a_client_opens_it(raw))
    delivered, decision = _run(raw, SIOBHAN, DARA)
    for opened in _as_a_client_opens_it(delivered):
        found = leaks(opened, SIOBHAN_NEEDLES)
        assert not found, "\n".join(found)
    inner = next(p for p in parse(delivered).walk() if p.get_content_type() == "message/rfc822").get_payload(0)
    assert isinstance(inner, EmailMessage)
    assert "Maple" in str(inner["From"]) and "See you at practice." in inner.get_content()
    assert decision.action in ("deliver", "redact"), decision.reason_dicts()


@pytest.mark.parametrize("policy", ["youth-strict", "supervised"])
def test_a_disclosure_in_a_forwarded_message_sent_base64_is_held_as_urgent(policy: str) -> None:
    raw = _forwarded_encoded(SIOBHAN, DARA, "i don't want to go home. don't tell anyone", "base64")
    _, decision = _run(raw, SIOBHAN, DARA, policy)
    assert decision.action == "hold" and decision.urgent, decision.reason_dicts()
    assert "secrecy" in _urgent_kinds(decision), decision.reason_dicts()


WANG = Member("王小明", "xiaoming.wang@school.example.cn", "Birch")
LI = Member("李明", "ming.li@school.example.cn", "Cedar")


@pytest.mark.parametrize("text, gone", [
    ("我是王小明，下周见。", "王小明"),  # the whole name, between other letters: Chinese has no spaces
    ("小明，你好！明天见。", "小明"),  # the given name, as friends write it
    ("祝好，\n李明", "李明"),  # a name of two letters is a whole name, not an ambiguous short word
])
def test_a_chinese_name_is_gone_though_no_space_sets_it_apart(text: str, gone: str) -> None:
    sender, partner = (LI, WANG) if gone == "李明" else (WANG, LI)
    raw, _ = _run(_plain(sender, partner, text), sender, partner)
    delivered = _body(raw)
    assert gone not in delivered and sender.handle in delivered, delivered
    assert "明天见" in delivered or "明天" not in text  # an ordinary word that shares a letter stays


def _body(raw: bytes) -> str:
    message = parse(raw)
    part = message.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


VERA = Member("Вера Иванова", "vera.ivanova@school.example.ru", "Aspen")
AHMED = Member("أحمد منصور", "ahmed.mansour@school.example.eg", "Willow")


@pytest.mark.parametrize("sender, partner, text, gone", [
    (VERA, LI, "Спасибо за помощь!\n\nПривет от Веры Ивановой", ["Веры", "Ивановой"]),  # Russian declines names
    (LI, VERA, "Передай Вере: я согласна с Ивановой.", ["Вере", "Ивановой"]),
    (AHMED, LI, "شكرا جزيلا لأحمد منصور ولعائلته", ["لأحمد", "منصور"]),  # "to Ahmed": a joined letter
])
def test_a_russian_or_arabic_name_is_gone_in_the_forms_a_sentence_gives_it(sender: Member, partner: Member,
                                                                          text: str, gone: list[str]) -> None:
    raw, _ = _run(_plain(sender, partner, text), sender, partner)
    delivered = _body(raw)
    assert not [word for word in gone if word in delivered], delivered


def test_a_disclosure_in_a_text_file_sent_as_octet_stream_is_held_as_urgent() -> None:
    """Some clients send a .txt file as application/octet-stream: it is still read for safeguarding signs."""
    message = _message(SIOBHAN, DARA, "my homework")
    message.set_content("Here is what I wrote.")
    message.add_attachment(b"I feel unsafe at home and my dad hits me.", maintype="application",
                           subtype="octet-stream", filename="notes.txt")
    _, decision = _run(message.as_bytes(), SIOBHAN, DARA, policy="youth-strict")
    assert decision.urgent and decision.action == "hold", decision.reason_dicts()
    assert "abuse" in {r["kind"] for r in decision.reason_dicts() if r.get("severity") == "urgent"}


def test_a_text_file_sent_as_octet_stream_is_delivered_as_text_without_the_name() -> None:
    message = _message(SIOBHAN, DARA, "my essay")
    message.set_content("My essay is attached.")
    essay = "My essay, by Siobhan O\u2019Brien-Ivanova (siobhan.obrien@oakmail.example)\n\nOnce upon a time..."
    message.add_attachment(essay.encode(), maintype="application", subtype="octet-stream", filename="essay.txt")
    delivered = _delivered_clean(message.as_bytes(), SIOBHAN, DARA, SIOBHAN_NEEDLES)
    [attached] = [part for part in parse(delivered).walk() if part.get_filename() == "essay.txt"]
    assert attached.get_content_type() == "text/plain" and "Once upon a time" in attached.get_content()


def test_every_word_of_a_very_long_name_is_still_found() -> None:
    """A name far longer than enrolment allows (one already in a store) is matched word by word, though the
    matcher builds runs of words from its first words only (bench/name_matcher.py: its cost)."""
    words = [f"Zorblax{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(60)]
    long = Member(" ".join(words), "long.name@school.example", "Rowan")
    text = "Thanks!\n\n" + " ".join(words[::-1]) + "\n" + words[42]
    delivered = _body(_run(_plain(long, DARA, text), long, DARA)[0])
    assert not [word for word in words if word in delivered], delivered


AMARU = Member("Amaru Quispe", "amaru.quispe@colegio.example.pe", "Alder")


@pytest.mark.parametrize("text", ["find me as amaruquispe", "my login is aquispe", "or a.quispe on the forum",
                                  "Amaru_Quispe everywhere"])
def test_a_name_run_together_as_a_login_or_handle_is_gone(text: str) -> None:
    delivered = _body(_run(_plain(AMARU, DARA, f"Hi!\n\n{text}\n"), AMARU, DARA)[0])
    assert "quispe" not in delivered.lower(), delivered


@pytest.mark.parametrize("name, sentence", [
    ("Peter Rice", "What price did you pay for the kit?"),  # "price" is no login of Peter Rice's
    ("Brian Ring", "Can you bring the draft on Monday?"),
    ("Li Ke", "I like your essay a lot, it reads well."),  # "like" is no run of "Li Ke"
    ("Rose Mary Smith", "We cooked chicken with rosemary."),
    ("Мира Котова", "Я хочу увидеть мир. В мире так много интересного."),  # a case of a word, not of Мира
    ("王海洋", "我很喜欢海洋，也想学海洋生物。"),  # 海洋 (ocean): the given name of 王海洋, and a word
])
def test_the_new_name_forms_leave_ordinary_words_alone(name: str, sentence: str) -> None:
    sender = Member(name, "member@school.example", "Hazel")
    delivered = _body(_run(_plain(sender, DARA, sentence), sender, DARA)[0])
    assert sentence in delivered, delivered
