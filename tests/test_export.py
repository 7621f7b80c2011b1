"""Exports: a pair's conversation opens with Python's mailbox module, holds every delivered copy in
order, and names no real person; --original gives the messages as received; the farewell attachment;
mboxrd quoting returns every "From " line as delivered; export files are created 0600."""

from __future__ import annotations

import email
import json
import mailbox
import zipfile
from email import policy
from email.message import EmailMessage
from pathlib import Path

from sqlalchemy import select

from relay.archive.export import attach_conversation, conversation_mbox, mboxrd_unquote
from relay.config import load_settings
from relay.service import Relay
from relay.store.database import create_engine
from relay.store.schema import messages, outbound
from tests.archive_support import build_archive
from tests.support import (
    MENTEE,
    MENTOR,
    Layout,
    Sink,
    acli,
    acli_json,
    acreate_pair,
    rows,
    rows_now,
    send,
    simple_message,
)

REAL = [MENTOR["email"], MENTEE["email"], "José Müller", "Jose Mueller", "Jane Doe", "jose.mueller", "jane.doe"]


def text_of(message: mailbox.mboxMessage | email.message.Message) -> str:
    """Headers and every decoded text part: a real name in base64 or quoted-printable counts too."""
    parsed = email.message_from_bytes(message.as_bytes(), policy=policy.default)
    texts = [f"{name}: {value}" for name, value in parsed.items()]
    for part in parsed.walk():
        if part.get_content_maintype() == "text":
            texts.append(part.get_content())
    return "\n".join(texts)


def leaks(texts: list[str]) -> list[str]:
    return [word for word in REAL for text in texts if word.casefold() in text.casefold()]


async def test_export_mbox_holds_the_delivered_copies_in_order_without_real_names(
        layout: Layout, sink: Sink, tmp_path: Path) -> None:
    archive = await build_archive(layout, sink)
    target = tmp_path / "pair.mbox"
    result = await acli(layout, "archive", "export", "--pair", str(archive.pair["id"]), "-o", str(target), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["messages"] == 3
    box = mailbox.mbox(str(target))
    exported = list(box)
    box.close()
    # what the participants saw, in delivery order: the rejected message never reached anybody
    assert [m["Subject"] for m in exported] == ["Hello", "Re: Hello", "Coffee"]
    assert [m["To"] for m in exported] == [f"Oak <{archive.pair['mentor_alias']}>",
                                           f"Maple <{archive.pair['mentee_alias']}>",
                                           f"Oak <{archive.pair['mentor_alias']}>"]
    delivered = sorted(received.message["Message-ID"] for received in sink.received
                       if "Auto-Submitted" not in received.message)  # notices are not the conversation
    assert sorted(m["Message-ID"] for m in exported) == delivered
    assert "engineering school" in text_of(exported[0])
    assert leaks([text_of(m) for m in exported]) == []
    assert leaks([target.read_bytes().decode("utf-8", "replace")]) == []
    events = await acli_json(layout, "events", "list", "--kind", "archive.export", "--json")
    assert [(e["pair_id"], e["detail"]["original"]) for e in events] == [(archive.pair["id"], False)]


async def test_export_original_and_eml_zip(layout: Layout, sink: Sink, tmp_path: Path) -> None:
    archive = await build_archive(layout, sink)
    pair = str(archive.pair["id"])
    target = tmp_path / "original.mbox"
    assert (await acli(layout, "archive", "export", "--pair", pair, "-o", str(target), "--original")).returncode == 0
    box = mailbox.mbox(str(target))
    originals = list(box)
    box.close()
    assert [m["Subject"] for m in originals] == ["Hello", "Re: Hello", "Coffee", "Coffee again"]
    assert MENTEE["email"] in originals[0]["From"]  # as received: the real sender
    stored = [email.message_from_bytes(raw) for raw in _raw_messages(layout)]
    assert [m["Message-ID"] for m in originals] == [m["Message-ID"] for m in stored]

    zipped = tmp_path / "pair.zip"
    result = await acli(layout, "archive", "export", "--pair", pair, "-o", str(zipped), "--format", "eml-zip")
    assert result.returncode == 0, result.stderr
    with zipfile.ZipFile(zipped) as archive_zip:
        names = archive_zip.namelist()
        subjects = [email.message_from_bytes(archive_zip.read(name))["Subject"] for name in names]
    assert [name[:5] for name in names] == ["0001-", "0002-", "0003-"]
    assert subjects == ["Hello", "Re: Hello", "Coffee"]


def _raw_messages(layout: Layout) -> list[bytes]:
    found = rows_now(layout, select(messages.c.raw).order_by(messages.c.received_at, messages.c.id))
    return [bytes(row.raw) for row in found]


async def test_export_errors_are_one_line(layout: Layout, sink: Sink, tmp_path: Path) -> None:
    missing = await acli(layout, "archive", "export", "--pair", "42", "-o", str(tmp_path / "x.mbox"))
    assert (missing.returncode, missing.stderr) == (1, "error: no pair with id 42\n")
    nowhere = await acli(layout, "archive", "export", "--pair", "1", "-o", str(tmp_path / "no" / "x.mbox"))
    assert nowhere.returncode == 1 and nowhere.stderr.startswith("error: cannot write ")
    assert "Traceback" not in missing.stderr + nowhere.stderr
    assert not (tmp_path / "x.mbox").exists()


async def test_the_conversation_attachment_opens_as_an_mbox_and_is_anonymised(
        layout: Layout, sink: Sink, tmp_path: Path) -> None:
    archive = await build_archive(layout, sink)
    engine = create_engine(load_settings(layout.config).database_url)
    try:
        mbox = await conversation_mbox(engine, archive.pair["id"])
    finally:
        await engine.dispose()
    farewell = EmailMessage()
    farewell["Subject"] = "Thank you"
    farewell.set_content("Your conversation is attached.")
    attach_conversation(farewell, mbox, archive.pair["id"])
    parsed = email.message_from_bytes(farewell.as_bytes(), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    (attachment,) = list(parsed.iter_attachments())
    assert attachment.get_content_type() == "application/mbox"
    assert attachment.get_filename() == f"conversation-pair-{archive.pair['id']}.mbox"
    saved = tmp_path / "attached.mbox"
    saved.write_bytes(attachment.get_content())
    box = mailbox.mbox(str(saved))
    messages = list(box)
    box.close()
    assert [m["Subject"] for m in messages] == ["Hello", "Re: Hello", "Coffee"]
    assert leaks([text_of(m) for m in messages]) == []


async def test_a_redacted_message_is_exported_as_delivered_and_as_received(
        layout: Layout, sink: Sink, tmp_path: Path) -> None:
    """Redactions never overwrite: the export shows the copy the partner got, --original the message as
    written, and the copy's row points at the original's (both are chained)."""
    import textwrap

    from relay.service import Relay
    from tests.support import acreate_pair, send, simple_message

    (layout.root / "policies" / "adult-professional.yaml").write_text(textwrap.dedent("""
        rules:
          contact_info:
            action: redact
    """))
    relay = Relay(load_settings(layout.config))
    await relay.start()
    try:
        pair = await acreate_pair(layout)
        code, _ = await send(layout.smtp_port, simple_message(MENTEE["email"], pair["mentor_alias"], "Hi",
                                                              "Text me on 555-867-5309 please"),
                             MENTEE["email"], pair["mentor_alias"])
        assert code == 250
        await sink.wait_for(1)
    finally:
        await relay.stop()
    exported = {}
    for name, extra in (("copy", []), ("original", ["--original"])):
        target = tmp_path / f"{name}.mbox"
        result = await acli(layout, "archive", "export", "--pair", str(pair["id"]), "-o", str(target), *extra)
        assert result.returncode == 0, result.stderr
        box = mailbox.mbox(str(target))
        (exported[name],) = [text_of(m) for m in box]
        box.close()
    assert "[contact details removed by the program]" in exported["copy"] and "867-5309" not in exported["copy"]
    assert "Text me on 555-867-5309 please" in exported["original"]
    ((written, delivered),) = await rows(layout, select(messages.c.raw, outbound.c.raw)
                                         .join_from(outbound, messages, outbound.c.message_id == messages.c.id)
                                         .where(outbound.c.kind == "relay"))
    assert b"867-5309" in written and b"867-5309" not in delivered
    assert (await acli(layout, "archive", "verify")).returncode == 0


FROM_LINES = "From the lab: hello.\n>From a quoted line.\n>>From deeper still.\nFrom\nFromage is not quoted.\n"


async def test_mbox_is_mboxrd_round_trips_through_python_mailbox_and_is_private(
        layout: Layout, sink: Sink, tmp_path: Path) -> None:
    """Body lines such as "From ..." and ">From ..." come back from the mbox exactly as delivered (mboxrd),
    Python's mailbox splits the file into the same messages, and export files are readable by the owner only."""
    relay = Relay(load_settings(layout.config))
    await relay.start()
    try:
        pair = await acreate_pair(layout)
        for subject in ("Lab notes", "More notes"):
            message = simple_message(MENTEE["email"], pair["mentor_alias"], subject, FROM_LINES)
            code, reply = await send(layout.smtp_port, message, MENTEE["email"], pair["mentor_alias"])
            assert code == 250, reply
        await sink.wait_for(2)
    finally:
        await relay.stop()
    delivered = [bytes(row.raw) for row in await rows(layout, select(outbound.c.raw).where(
        outbound.c.kind == "relay").order_by(outbound.c.created_at, outbound.c.id))]
    received = _raw_messages(layout)
    assert all(b"\nFrom the lab" in raw.replace(b"\r\n", b"\n") for raw in delivered + received)

    for option, expected in (((), delivered), (("--original",), received)):
        target = tmp_path / f"export{''.join(option)}.mbox"
        result = await acli(layout, "archive", "export", "--pair", str(pair["id"]), "-o", str(target), *option)
        assert result.returncode == 0, result.stderr
        assert target.stat().st_mode & 0o777 == 0o600
        assert b"\n>From the lab" in target.read_bytes() and b"\n>>From a quoted" in target.read_bytes()
        box = mailbox.mbox(str(target))
        try:
            back = [mboxrd_unquote(box.get_bytes(key)) for key in box.iterkeys()]
        finally:
            box.close()
        assert back == [raw.replace(b"\r\n", b"\n") for raw in expected]

    zipped = tmp_path / "export.zip"
    assert (await acli(layout, "archive", "export", "--pair", str(pair["id"]), "-o", str(zipped), "--format", "eml-zip",
                       "--original")).returncode == 0
    assert zipped.stat().st_mode & 0o777 == 0o600
