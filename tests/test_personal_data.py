"""What counts as personal data in event details and hold reasons (relay.archive.personal, pure): what a
rule matched, addresses, the people's names in any case or JSON escape, phone numbers in free text; the
shape and the values reports read stay."""

from __future__ import annotations

import json

from relay.archive.personal import ERASED, Eraser


def test_event_details_lose_personal_data_and_keep_their_shape() -> None:
    eraser = Eraser(["José Müller", "jose@uni.example", "Pepe"])
    detail = json.dumps({
        "decision": "hold", "reasons": [{"rule": "contact_info", "kind": "phone", "match": "+1 415 555 0123",
                                         "start": 10, "end": 25}],
        "reason": "stranger", "mail_from": "x@stranger.example", "note": "He said JOSÉ MÜLLER, call 020 7946 0958",
        "until": "2026-07-01", "handles": {"mentor": "Oak"}, "count": 3, "to": ["lead@school.example"],
        "subject": "pepe's number",
    }, sort_keys=True, default=str)  # as relay.store.events writes it: ASCII, "\\u00e9" escapes
    assert "JOS\\u00c9" in detail
    cleaned = json.loads(eraser.json_text(detail))
    assert cleaned == {
        "decision": "hold", "reasons": [{"rule": "contact_info", "kind": "phone", "match": ERASED,
                                         "start": 10, "end": 25}],
        "reason": "stranger", "mail_from": ERASED, "note": f"He said {ERASED}, call {ERASED}",
        "until": "2026-07-01", "handles": {"mentor": "Oak"}, "count": 3, "to": [ERASED],
        "subject": f"{ERASED}'s number",
    }
    assert eraser.json_text(json.dumps({"decision": "deliver"})) == json.dumps({"decision": "deliver"})  # unchanged
    assert set(eraser.search_terms()) >= {"José Müller", "Jos\\u00e9 M\\u00fcller"}


def test_only_known_strings_leave_other_people_alone() -> None:
    eraser = Eraser(["jane@mail.example", "Jane Doe", "Al"]).only_known()  # "Al": too short to search for
    assert eraser.value({"mail_from": "jane@mail.example", "to": ["lead@school.example"], "match": "Jane Doe",
                         "note": "Albert called 555 0100 200"}) == {
        "mail_from": ERASED, "to": ["lead@school.example"], "match": ERASED, "note": "Albert called 555 0100 200"}
    assert Eraser([]).text("no one") == "no one"
