"""The identity rule: defence in depth after anonymisation, a real address or name that survived it.

The message is checked for the sender's own real address, name and nicknames and for the recipient's (the
partner's) — in a group, for every other member's (`Inspection.other_members`; each is reported as
`partner_*`, whichever member it is, so a policy treats a group like a pair), with the same matching as the
scrub (relay.anonymize.names): any case, accents or none, NFD, fullwidth and look-alike letters, umlauts
written out, "_ . - digits" as boundaries, first name prefixes, the address wrapped at "@". It reads
everything the inspection holds (every part, HTML attributes and decoded links, calendar and vCard text, file
names), so what it finds is what the scrub missed. A name part that is also an ordinary word ("Will", "Rose")
counts where it reads as a name (names.reads_as_name), and the scrub replaces it only there. Every other
occurrence the scrub left ("I will", "talk to Paris" for a member named Paris, "Hope you are well") is
reported too, as `own_name_word` / `partner_name_word`, with `common_word_parts: every_form` (the default), so
the policy decides (the shipped policies hold); `common_word_parts: judged` reports only where it reads as a
name. With `check_name_parts: false` only full names and addresses are reported.
The program's other participants outside the conversation (`Inspection.bystanders`: the sender's other mentees,
their pair mentor, everyone enrolled in the sender's programs) are checked too, reported as `partner_*`, but
only where a form reads as a name (as `judged`): their names are many, and a common word among them ("Will",
"Grace") would otherwise hold most mail of the program, while the scrub has already replaced every such
form that reads as a name. Nothing inside one of the
relay's own alias addresses counts, since aliases are built from handles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from relay.anonymize.names import Hit, Person, matcher_for
from relay.moderation.findings import Finding
from relay.moderation.inspection import Inspection

NAME = "identity"


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    check_name_parts: bool = Field(True, strict=True)
    common_word_parts: Literal["judged", "every_form"] = "every_form"


def check(inspection: Inspection, params: Params) -> list[Finding]:
    text = inspection.text
    each = [("own", Person(email, inspection.sender_name, inspection.sender_nicknames))
            for email in (inspection.sender_email, *inspection.sender_other_emails)]
    each += [("partner", Person(email, inspection.recipient_name, inspection.recipient_nicknames))
             for email in (inspection.recipient_email, *inspection.recipient_other_emails)]
    each += [("partner", Person(email, name, tuple(nicknames))) for email, name, nicknames in inspection.other_members]
    judged_from = len(each)  # the bystanders follow: only their forms that read as a name count
    each += [("partner", Person(email, name, tuple(nicknames))) for email, name, nicknames in inspection.bystanders]
    people = tuple(person for _, person in each)
    who = tuple(side for side, _ in each)
    aliases = list(_alias_spans(text, inspection.aliases))
    findings: list[Finding] = []
    for hit in _hits(text, people, judged_from, every_form=params.common_word_parts == "every_form"):
        if any(start <= hit.start and hit.end <= end for start, end in aliases):
            continue
        match = text[hit.start:hit.end]
        if hit.kind == "address" and re.match(r"[\w.+-]", text[hit.start - 1:hit.start]):
            continue  # the tail of a longer address is another address (the scrub replaces it all the same)
        if hit.kind == "name" and not params.check_name_parts and not re.search(r"\s", match):
            continue
        kind = f"{who[hit.person]}_{hit.kind}" + ("" if hit.certain else "_word")
        findings.append(Finding(rule=NAME, kind=kind, match=match, start=hit.start, end=hit.end))
    return findings


def _hits(text: str, people: tuple[Person, ...], judged_from: int, *, every_form: bool) -> list[Hit]:
    """The members' hits (people[:judged_from]; every form when asked), and the bystanders' (the rest) that read
    as a name and overlap none of the members'."""
    hits = matcher_for(people[:judged_from]).find(text, every_form=every_form)
    if judged_from == len(people):
        return hits
    taken = [(hit.start, hit.end) for hit in hits]
    hits += [replace(hit, person=hit.person + judged_from) for hit in matcher_for(people[judged_from:]).find(text)
             if not any(hit.start < end and start < hit.end for start, end in taken)]
    return sorted(hits, key=lambda hit: hit.start)


def _alias_spans(text: str, aliases: Iterable[str]) -> Iterator[tuple[int, int]]:
    for alias in aliases:
        if alias:
            yield from (match.span() for match in re.finditer(re.escape(alias), text, re.IGNORECASE))
