"""OpenPGP and S/MIME armour pasted as text: held for a moderator with the reason, never delivered as it came.

Mailvelope and webmail users paste their public key into the body ("here is my key"), write inline-encrypted
text (-----BEGIN PGP MESSAGE-----) and clear-sign (-----BEGIN PGP SIGNED MESSAGE----- ... SIGNATURE); others
paste a certificate or a PKCS #7 block. The key's user ID ("Jane Doe <jane.doe@mail.example.org>"), the
signature's issuer fingerprint and the certificate's subject are inside the base64, where no scrub sees them,
and no rule reads encrypted text. The blocks are real (tests/data/armour/README.md says how they were made);
each message goes through the relay's own line (relay.pipeline.prepare, shipped policies), and one through a
running relay and a moderator's release.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from email.message import EmailMessage

import pytest

from relay.anonymize.message import parse
from relay.anonymize.scrub import Identity
from relay.moderation.inspection import PairStats
from relay.moderation.policy import parse_policy
from relay.pipeline import prepare
from tests.consolekit import add_moderator, serving
from tests.decode_all import everything
from tests.safeguarding_kit import use_shipped_policy
from tests.support import MENTEE, MENTOR, REPO, Layout, Sink, acli, acreate_pair, eventually, send

DATA = REPO / "tests" / "data" / "armour"
KEY = (DATA / "jane_public_key.asc").read_text()
ENCRYPTED = (DATA / "encrypted_message.asc").read_text()
CLEARSIGNED = (DATA / "clearsigned.txt").read_text()
CERTIFICATE = (DATA / "certificate.pem").read_text()
PKCS7 = (DATA / "smime.p7b.pem").read_text()
DOMAIN = "relay.test"
NOW = datetime(2026, 11, 4, 9, 0, tzinfo=UTC)
JANE = Identity(MENTEE["email"], MENTEE["name"], f"maple.x9@{DOMAIN}", "Maple")
JOSE = Identity(MENTOR["email"], MENTOR["name"], f"oak.k2@{DOMAIN}", "Oak")


def payload_lines(block: str) -> list[str]:
    """The base64 lines of an armoured block: what carries the user ID, the fingerprint, the subject."""
    return [line for line in block.splitlines() if len(line) >= 16 and not line.startswith(("-----", "Hash:"))
            and " " not in line]


def test_the_blocks_carry_the_identity() -> None:
    """The fixtures are what the tests say they are: the key and the certificate name Jane Doe in their base64."""
    for block in (KEY, CERTIFICATE):
        data = base64.b64decode("".join(line for line in payload_lines(block) if not line.startswith("=")))
        assert MENTEE["email"].encode() in data


def _message(body: str | bytes, *, subtype: str = "plain", extra: str = "") -> bytes:
    head = (f"From: {MENTEE['name']} <{MENTEE['email']}>\r\nTo: {JOSE.alias_address}\r\nSubject: my key\r\n"
            f"Message-ID: <k.1@mail.example.org>\r\nMIME-Version: 1.0\r\n")
    if extra:
        return head.encode() + extra.encode()
    return head.encode() + f"Content-Type: text/{subtype}; charset=utf-8\r\n\r\n".encode() + (
        body if isinstance(body, bytes) else body.replace("\n", "\r\n").encode())


def _with_file(text: str, content_type: str, filename: str) -> bytes:
    return _message("", extra=(
        "Content-Type: multipart/mixed; boundary=b0\r\n\r\n--b0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "My key is attached.\r\n--b0\r\n"
        f"Content-Type: {content_type}\r\nContent-Disposition: attachment; filename=\"{filename}\"\r\n\r\n"
        + text.replace("\n", "\r\n") + "\r\n--b0--\r\n"))


def _docx_file(block: str) -> bytes:
    """A Word document with the block typed (pasted) into it, a paragraph a line, attached base64."""
    from tests.test_document_text import _docx

    data = base64.encodebytes(_docx(["My key:"], *([line] for line in block.splitlines()))).decode()
    return _message("", extra=(
        "Content-Type: multipart/mixed; boundary=b0\r\n\r\n--b0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        "My key, in Word.\r\n--b0\r\nContent-Type: application/vnd.openxmlformats-officedocument.wordprocessingml."
        "document\r\nContent-Disposition: attachment; filename=\"key.docx\"\r\nContent-Transfer-Encoding: base64\r\n"
        "\r\n" + data.replace("\n", "\r\n") + "\r\n--b0--\r\n"))


def _mailvelope_html(block: str) -> str:
    """As Mailvelope's webmail editor writes a pasted block: a <div> a line, blank lines as <br>."""
    lines = "".join(f"<div>{line}</div>" if line else "<div><br></div>" for line in block.splitlines())
    return f"<html><body><div>Hi Oak, my key:</div>{lines}<div>Jane</div></body></html>"


CASES = {  # name: (message, the words the reason names, the block whose base64 must not be delivered)
    "public_key_in_the_body": (_message("Hi Oak, here is my key so you can write to me encrypted:\n\n" + KEY),
                               "OpenPGP key", KEY),
    "public_key_quoted_in_a_reply": (_message("Thanks, got it.\n\n> " + KEY.replace("\n", "\n> ")), "OpenPGP key",
                                     KEY),
    "inline_encrypted": (_message(ENCRYPTED), "encrypted", ENCRYPTED),
    "clear_signed": (_message(CLEARSIGNED), "signature", CLEARSIGNED),
    "certificate_pasted": (_message("My certificate:\n" + CERTIFICATE), "certificate", CERTIFICATE),
    "pkcs7_pasted": (_message("Signed:\n" + PKCS7), "certificate or signature", PKCS7),
    "key_file_as_text_plain": (_with_file(KEY, "text/plain; charset=us-ascii", "jane_pub.asc"), "OpenPGP key", KEY),
    "key_file_as_pgp_keys": (_with_file(KEY, "application/pgp-keys", "0x3CD0AC86.asc"), "PGP", KEY),
    "key_in_html": (_message(_mailvelope_html(KEY), subtype="html"), "OpenPGP key", KEY),
    "encrypted_in_html_pre": (_message(f"<p>for you</p><pre>{ENCRYPTED}</pre>", subtype="html"), "encrypted",
                              ENCRYPTED),
    "key_in_a_word_document": (_docx_file(KEY), "armoured key", KEY),
    "key_in_html_with_entity_dashes": (_message("<p>" + KEY.replace("-", "&#45;").replace("\n", "<br>") + "</p>",
                                                subtype="html"), "OpenPGP key", KEY),
}


def _run(raw: bytes, policy: str) -> tuple[bytes, list[dict[str, object]], str]:
    context = {"sender_role": "mentee", "sender_email": JANE.email, "sender_name": JANE.name,
               "recipient_email": JOSE.email, "recipient_name": JOSE.name, "region": "US", "domain": DOMAIN,
               "aliases": (JANE.alias_address, JOSE.alias_address), "stats": PairStats(5, 1)}
    prepared = prepare(parse(raw), sender=JANE, recipient=JOSE, thread_map={}, new_message_id=f"<n@{DOMAIN}>",
                       now=NOW, domain=DOMAIN, policy=parse_policy(REPO / "policies" / f"{policy}.yaml"),
                       context=context)
    return prepared.raw, prepared.decision.reason_dicts(), prepared.decision.action


@pytest.mark.parametrize("policy", ["adult-professional", "supervised"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_armour_is_held_with_the_reason_and_its_copy_carries_a_note(name: str, policy: str) -> None:
    raw, words, block = CASES[name]
    delivered, reasons, action = _run(raw, policy)
    assert action == "hold", reasons
    assert any(r["kind"] == "not_cleaned" and words in str(r["match"]) for r in reasons), reasons
    seen = "\n".join(everything(delivered))
    assert [line for line in payload_lines(block) if line in seen] == []  # what a release would deliver
    assert "was removed by the program" in seen


def test_the_signed_text_of_a_clear_signed_message_stays_readable() -> None:
    delivered, _, _ = _run(CASES["clear_signed"][0], "adult-professional")
    body = parse(delivered).get_body(("plain",))
    assert isinstance(body, EmailMessage)
    text = body.get_content()
    assert "see you on Tuesday for the essay." in text and "[An OpenPGP signature was removed by the program" in text


def test_ordinary_dashes_are_not_armour() -> None:
    raw = _message("-----Original Message-----\nFrom: Oak\n\nSee you -----BEGIN here, and ----- there.\n"
                   "-----BEGIN FORWARDED MESSAGE-----\n")
    _, reasons, action = _run(raw, "adult-professional")
    assert action == "deliver", reasons


async def test_a_pasted_key_is_held_and_its_release_delivers_the_note(layout: Layout, sink: Sink) -> None:
    """Through a running relay: the mentee's key waits for a moderator (the reason says why); released, the
    mentor gets the message with a note where the key was, and no trace of its user ID."""
    use_shipped_policy(layout, "supervised", lead=False)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout)
        raw = CASES["public_key_in_the_body"][0].replace(JOSE.alias_address.encode(), pair["mentor_alias"].encode())
        code, reply = await send(layout.smtp_port, raw, MENTEE["email"], pair["mentor_alias"])
        assert code == 250, reply
        queue_id = reply.rsplit(" ", 1)[-1]
        listing = await acli(layout, "held", "list", "--json")
        item = next(item for item in json.loads(listing.stdout) if item["id"] == queue_id)
        assert any("OpenPGP key pasted as text" in reason["match"] and "names its owner" in reason["match"]
                   for reason in item["reasons"]), item["reasons"]
        released = await acli(layout, "held", "release", queue_id, "--moderator", "ana")
        assert released.returncode == 0, released.stderr
        copies = await eventually(lambda: [r for r in sink.received if r.rcpt_tos == [MENTOR["email"]]] or None,
                                  timeout=20)
        seen = "\n".join(everything(copies[0].raw))
        assert "here is my key" in seen and "[An OpenPGP key pasted as text was removed by the program" in seen
        assert [line for line in payload_lines(KEY) if line in seen] == [] and "BEGIN PGP" not in seen
