"""The shipped urgent lists against a labelled set of ordinary and worrying mentoring messages in each
language they cover (tests/data/safeguarding_labelled.jsonl: written for this project, Apache-2.0), and the
rules of severity: an urgent finding holds the message for a person whatever the other rules say.

A row is labelled as a safeguarding lead would label it, even where the lists knowingly miss it: such a row
carries "missed" (why it is left out) and is checked to be still missed, so that the gap stays in sight and
the row counts the day it is found."""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from functools import cache
from pathlib import Path

import pytest

from relay.moderation import decide
from relay.moderation.inspection import Inspection
from relay.moderation.policy import Policy, parse_policy
from tests.support import REPO, Layout, cli, free_port

LABELLED = [json.loads(line) for line in (REPO / "tests" / "data" / "safeguarding_labelled.jsonl").read_text(
    encoding="utf-8").splitlines() if line.strip()]
LANGUAGES = ("en", "es", "fr", "ar", "ru", "pt", "de", "uk", "tr", "hi-Latn")  # each with its own lists
URGENT_KINDS = {"self-harm", "abuse", "secrecy", "meeting", "gifts-money", "private-channel", "photos", "running-away"}


@cache
def shipped(policy_name: str) -> Policy:
    return parse_policy(REPO / "policies" / f"{policy_name}.yaml")


def urgent_kinds(policy_name: str, text: str) -> list[str]:
    decision = decide(shipped(policy_name), Inspection(text=text, subject=""))
    return sorted({r.finding.kind for r in decision.reasons if r.severity == "urgent"})


def test_the_labelled_set_covers_every_language_both_ways() -> None:
    positives = Counter(row["lang"] for row in LABELLED if row["urgent"])
    negatives = Counter(row["lang"] for row in LABELLED if not row["urgent"])
    for language in LANGUAGES:
        assert positives[language] >= 8 and negatives[language] >= 6, language
    kinds = {kind for row in LABELLED for kind in row["urgent"]}
    assert kinds == URGENT_KINDS
    for language in LANGUAGES:  # every language a shipped list covers, for every kind of sign
        assert {kind for row in LABELLED if row["lang"] == language for kind in row["urgent"]} == URGENT_KINDS, language


ROWS = [pytest.param(row, id=f"{row['lang']}-{i}",
                     marks=[pytest.mark.xfail(strict=True, reason=row["missed"])] if "missed" in row else [])
        for i, row in enumerate(LABELLED)]


@pytest.mark.parametrize("row", ROWS)
@pytest.mark.parametrize("policy", ["youth-strict", "supervised"])
def test_the_urgent_lists_find_what_is_labelled_and_nothing_else(policy: str, row: dict) -> None:  # type: ignore[type-arg]
    assert urgent_kinds(policy, row["text"]) == row["urgent"]


def test_the_precision_corpus_pages_nobody() -> None:
    """The 300 ordinary messages of the precision corpus (tests/data/precision: essays, subjects, places, prices)
    carry no urgent sign under either youth policy: a page for homework teaches a lead to ignore pages."""
    folder = REPO / "tests" / "data" / "precision"
    lines = [line for path in sorted(folder.glob("*.txt")) for line in path.read_text("utf-8").splitlines()
             if line.strip()]
    assert len(lines) >= 300
    for policy in ("youth-strict", "supervised"):
        paged = [(line, urgent_kinds(policy, line)) for line in lines if urgent_kinds(policy, line)]
        assert paged == [], paged


def _policy(tmp_path: Path, text: str) -> Policy:
    path = tmp_path / "p.yaml"
    path.write_text(textwrap.dedent(text))
    return parse_policy(path)


URGENT_AND_REJECT = """
    default_action: deliver
    rules:
      contact_info:
        action: reject
      keywords:
        - name: secrecy
          action: deliver-and-flag
          severity: urgent
          words: [keep this secret]
        - name: plain
          action: reject
          words: [homework]
"""


def test_an_urgent_finding_holds_whatever_the_other_rules_say(tmp_path: Path) -> None:
    policy = _policy(tmp_path, URGENT_AND_REJECT)
    rejected = decide(policy, Inspection(text="Call me on +1 415 555 0134 and keep this secret", subject=""))
    assert (rejected.action, rejected.severity, rejected.release_requires) == ("hold", "urgent", 1)
    flagged = decide(policy, Inspection(text="Keep this secret", subject=""))
    assert (flagged.action, flagged.urgent) == ("hold", True)  # never delivered automatically either
    plain = decide(policy, Inspection(text="My homework is done", subject=""))
    assert (plain.action, plain.severity) == ("reject", "normal")
    assert [r["severity"] for r in rejected.reason_dicts() if "severity" in r] == ["urgent"]


def test_typographic_apostrophes_match_listed_ones() -> None:
    assert urgent_kinds("youth-strict", "Don’t tell your parents") == ["secrecy"]
    assert urgent_kinds("youth-strict", "N’en parle à personne") == ["secrecy"]


def test_a_bad_severity_and_a_bad_safeguarding_block_are_errors_with_their_line(tmp_path: Path) -> None:
    layout = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=None)
    layout.write()
    policy = layout.root / "policies" / "youth-strict.yaml"
    policy.write_text("rules:\n  keywords:\n    - action: hold\n      severity: critical\n      words: [x]\n")
    result = cli(layout, "check-config")
    assert result.returncode == 1 and f"{policy}:4: " in result.stderr and "severity" in result.stderr
    policy.write_text("name: youth-strict\n")
    program = layout.root / "programs" / "stem.yaml"
    program.write_text(program.read_text() + "safeguarding:\n  lead: not-an-address\n  urgent_review_within: 0s\n")
    lines = program.read_text().splitlines()
    result = cli(layout, "check-config")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    lead_line = lines.index("  lead: not-an-address") + 1
    assert f"{program}:{lead_line}: safeguarding.lead: " in result.stderr, result.stderr
    assert f"{program}:{lead_line + 1}: safeguarding.urgent_review_within: " in result.stderr, result.stderr
