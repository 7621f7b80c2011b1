"""Automatic replies from a participant are archived, never forwarded; the partner hears once a week."""

from __future__ import annotations

import pytest

from relay.service import Relay
from tests.support import (
    DOMAIN,
    MENTEE,
    MENTOR,
    Layout,
    Sink,
    acli,
    acli_json,
    acreate_pair,
    eventually,
    send,
    simple_message,
)

OUT_OF_OFFICE = ("I am out of the office until Monday. For urgent matters call me on +1 415 555 0199 "
                 "or write to my colleague at sam.jones@bigcorp.example.")


async def mentor_sends(layout: Layout, pair: dict, subject: str, body: str, **headers: str) -> None:  # type: ignore[type-arg]
    code, text = await send(layout.smtp_port, simple_message(
        f"José Müller <{MENTOR['email']}>", pair["mentee_alias"], subject, body, **headers),
        MENTOR["email"], pair["mentee_alias"])
    assert code == 250, text


@pytest.mark.parametrize(("subject", "headers"), [
    ("Re: my project", {"Auto_Submitted": "auto-replied"}),
    ("Re: my project", {"Precedence": "auto_reply"}),
    ("Re: my project", {"X_Autoreply": "yes"}),
    ("Automatic reply: my project", {}),
    ("Out of Office: my project", {}),
    ("Abwesenheitsnotiz: Re: Projekt", {}),
])
async def test_out_of_office_becomes_a_neutral_notice_once(
    relay: Relay, layout: Layout, sink: Sink, subject: str, headers: dict[str, str],
) -> None:
    pair = await acreate_pair(layout)
    await mentor_sends(layout, pair, subject, OUT_OF_OFFICE, **headers)
    await mentor_sends(layout, pair, subject, OUT_OF_OFFICE + " (again)", **headers)
    await mentor_sends(layout, pair, "Back soon", "Hi Maple, I will answer properly tomorrow!")
    received = await sink.wait_for(2)
    subjects = [r.message["Subject"] for r in received]
    assert sorted(subjects) == ["Back soon", "Oak is away for now"]  # one notice, then real mail flows
    notice = next(r for r in received if r.message["Subject"] == "Oak is away for now")
    assert notice.rcpt_tos == [MENTEE["email"]] and notice.message["Auto-Submitted"] == "auto-generated"
    assert notice.message["Reply-To"] == f"help@{DOMAIN}"  # a child's reply to it reaches the coordinator
    text = notice.message.get_content()
    assert "Oak has an automatic reply switched on" in text
    assert "415" not in text and "bigcorp" not in text and "José" not in text
    decisions = await acli_json(layout, "events", "list", "--kind", "decision", "--json")
    assert [d["detail"]["decision"] for d in decisions] == ["autoreply", "autoreply", "deliver"]
    assert len(await acli_json(layout, "events", "list", "--kind", "away_notice", "--json")) == 1


async def test_a_human_subject_about_the_office_is_delivered(relay: Relay, layout: Layout, sink: Sink) -> None:
    pair = await acreate_pair(layout)
    await mentor_sends(layout, pair, "Office visit next week?", "Shall we meet at the office?")
    await mentor_sends(layout, pair, "Re: out of office hours", "I answer in the evenings.",
                       Auto_Submitted="no")
    received = await eventually(lambda: len(sink.received) == 2 and sink.received)
    assert [r.message["Subject"] for r in received] == ["Office visit next week?", "Re: out of office hours"]


def _unreadable_out_of_office() -> bytes:
    """An automatic reply whose MIME structure cannot be read (the corpus's malformed/000.eml, from the mentee,
    marked Auto-Submitted)."""
    from tests.test_malformed import CORPUS, from_mentee

    raw = from_mentee((CORPUS / "malformed" / "000.eml").read_bytes())
    return b"Auto-Submitted: auto-replied\r\n" + raw


@pytest.mark.parametrize("closed", [False, True], ids=["active pair", "closed pair"])
async def test_an_automatic_reply_that_cannot_be_read_is_archived_not_refused(layout: Layout, sink: Sink,
                                                                             relay: Relay, closed: bool) -> None:
    """Automatic replies are read for a disclosure first; one that cannot be read is set aside as before (it
    is delivered to nobody), not refused: the sending server would otherwise bounce it back to the mentor."""
    pair = await acreate_pair(layout)
    if closed:
        assert (await acli(layout, "pair", "close", str(pair["id"]))).returncode == 0
    raw = _unreadable_out_of_office()
    code, reply = await send(layout.smtp_port, raw, MENTEE["email"], pair["mentor_alias"])
    assert code == 250, reply
    decisions = await acli_json(layout, "events", "list", "--kind", "decision", "--json")
    assert [d["detail"]["decision"] for d in decisions] == ["ended" if closed else "autoreply"], decisions
