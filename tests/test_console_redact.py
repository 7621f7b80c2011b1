"""Redact and release, over real HTTP with a real relay and sink: an edit clears the approvals given before it
(a rule's `release_requires: 2` then needs a second moderator who saw the edit: a release from a page or an
API read older than the edit is refused), and the edited text is read by the policy's rules again: an edit
that adds what the rules redact, reject, hold for another reason or find urgent is refused, nothing saved,
nothing delivered."""

from __future__ import annotations

import json
import textwrap

from sqlalchemy import select

from relay.store.schema import message_edits
from tests.consolekit import add_moderator, csrf_of, prepare, serving, session, token_for, write
from tests.support import MENTEE, MENTOR, Layout, Sink, acli, acli_json, acreate_pair, eventually, rows

POLICY = """
    default_action: deliver
    rules:
      keywords:
        - name: meeting
          action: hold
          release_requires: 2
          words: [meet]
        - name: secrecy
          action: hold
          words: [secret]
        - name: self-harm
          action: hold
          severity: urgent
          release_requires: 2
          words: [kill myself]
      contact_info:
        action: redact
        kinds: [email, phone, phone_words, url, handle]
    moderators:
      notify: [moderators@school.example]
"""


def _setup(layout: Layout) -> None:
    prepare(layout)
    (layout.root / "policies" / "two-person.yaml").write_text(textwrap.dedent(POLICY))


def _to_mentee(sink: Sink) -> list[str]:
    return [r.message.get_body(("plain",)).get_content().strip() for r in sink.received
            if r.rcpt_tos == [MENTEE["email"]]]


async def _held(layout: Layout, held_id: str) -> dict[str, object]:
    shown = await acli(layout, "held", "show", held_id, "--json")
    assert shown.returncode == 0, shown.stderr
    found: dict[str, object] = json.loads(shown.stdout)
    return found


async def test_an_edit_needs_a_second_approval_from_someone_who_saw_it(layout: Layout, sink: Sink) -> None:
    _setup(layout)
    async with serving(layout):
        for name in ("ana", "bea"):
            await add_moderator(layout, name, "stem")
        pair = await acreate_pair(layout, MENTOR, MENTEE, "stem", "--policy", "two-person")
        held_id = await write(layout, pair, "saturday", "Can we meet at the library on Saturday?", sender=MENTOR,
                              alias_key="mentee_alias")
        edited = "Can we meet at the library on Saturday afternoon, with your mum?"
        async with session(layout, "bea") as bea, session(layout, "ana") as ana:
            before = await bea.get(f"/held/{held_id}")
            approved = await bea.post(f"/held/{held_id}/release", data={"csrf_token": csrf_of(before.text),
                                                                         "edit": "0"})
            assert approved.status_code == 200 and "(1 of 2)" in approved.text
            page = await ana.get(f"/held/{held_id}")
            done = await ana.post(f"/held/{held_id}/redact", data={"csrf_token": csrf_of(page.text), "text": edited})
            assert done.status_code == 200 and "(1 of 2)" in done.text and "no longer count" in done.text
            item = await _held(layout, held_id)
            assert item["state"] == "held" and item["approvals"] == ["ana"]  # bea's approval was of the original
            # bea presses Release on the page she opened before the edit: refused, nothing counted.
            stale = await bea.post(f"/held/{held_id}/release", data={"csrf_token": csrf_of(before.text),
                                                                      "edit": "0"})
            assert stale.status_code == 409 and "edited this message after you opened it" in stale.text
            # a page's edit number that this console never wrote: 400 and nothing counted (was a 500)
            for forged in ("\u00b2", "9" * 5000, "x", "-1"):
                bad_form = await bea.post(f"/held/{held_id}/release", data={"csrf_token": csrf_of(before.text),
                                                                             "edit": forged})
                assert bad_form.status_code == 400 and "open the message again" in bad_form.text, forged
            assert (await _held(layout, held_id))["approvals"] == ["ana"]
            # Through the API the same: the release names the edit it read.
            token = {"authorization": f"Bearer {await token_for(layout, 'bea')}"}
            shown = (await bea.get(f"/api/held/{held_id}", headers=token)).json()
            assert shown["edit"] > 0 and shown["preview"]["text"].strip() == edited
            refused = await bea.post(f"/api/held/{held_id}/release", headers=token, json={"edit": 0})
            assert refused.status_code == 409 and _to_mentee(sink) == []
            bad = await bea.post(f"/api/held/{held_id}/release", headers=token, json={"edit": "x"})
            assert bad.status_code == 400
            released = await bea.post(f"/api/held/{held_id}/release", headers=token, json={"edit": shown["edit"]})
            assert released.status_code == 200 and released.json()["status"] == "released"
        assert await eventually(lambda: _to_mentee(sink)) == [edited]
        assert (await _held(layout, held_id))["approvals"] == ["ana", "bea"]
    found = [e for e in await acli_json(layout, "events", "list", "--json") if e["message_id"] == held_id]
    cleared = [e for e in found if e["kind"] == "approvals_cleared"]
    assert len(cleared) == 1 and cleared[0]["actor"] == "ana" and cleared[0]["detail"]["cleared"] == ["bea"]


async def test_an_edit_that_adds_what_the_rules_catch_is_refused(layout: Layout, sink: Sink) -> None:
    _setup(layout)
    async with serving(layout):
        await add_moderator(layout, "ana", "stem")
        pair = await acreate_pair(layout, MENTOR, MENTEE, "stem", "--policy", "two-person")
        held_id = await write(layout, pair, "saturday", "Shall we meet on Saturday?", sender=MENTOR,
                              alias_key="mentee_alias")
        async with session(layout, "ana") as ana:
            for text, named in (
                    ("Meet me at the bus station at 9pm. Call me on (415) 867-5309.", "contact_info"),  # redacted
                    ("Meet me on Saturday, it is our secret.", "secret"),  # held by another rule
                    ("Meet me on Saturday or I will kill myself.", "urgent"),  # a safeguarding sign
            ):
                page = await ana.get(f"/held/{held_id}")
                refused = await ana.post(f"/held/{held_id}/redact", data={"csrf_token": csrf_of(page.text),
                                                                          "text": text})
                assert refused.status_code == 409 and "The edit is not saved" in refused.text, refused.text
                assert named in refused.text
            # Taking out what the rule caught is what an edit is for: that one is saved, and needs two people.
            page = await ana.get(f"/held/{held_id}")
            done = await ana.post(f"/held/{held_id}/redact", data={"csrf_token": csrf_of(page.text),
                                                                   "text": "Shall we meet on Saturday at school?"})
            assert done.status_code == 200 and "(1 of 2)" in done.text
        item = await _held(layout, held_id)
        assert item["state"] == "held" and item["approvals"] == ["ana"]
        assert len(await rows(layout, select(message_edits.c.id))) == 1  # the refused edits were not saved
        assert _to_mentee(sink) == []
