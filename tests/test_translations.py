"""Every notice in every shipped language: the catalogs are complete and compiled, each notice renders
without an English sentence left in a translation, HTML notices carry the right lang/dir; a program's
own templates and .po files apply to every notice; dates and durations follow the reader's language."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from io import BytesIO
from pathlib import Path
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_date, format_time
from babel.localedata import locale_identifiers
from babel.messages.extract import extract_from_dir
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from relay.languages import LOCALES, SHIPPED, LanguageError, check, direction, locale
from relay.notices import TEMPLATES, notice, render
from relay.notices.when import format_day, format_duration, format_when

TRANSLATED = [language for language in SHIPPED if language != "en"]
FOOTERS = ("help_answer_footer.txt.j2", "group_private_footer.txt.j2")  # lines added to other mail, not notices
NAMES = sorted(path.name.removesuffix(".txt.j2") for path in TEMPLATES.glob("*.txt.j2")
               if path.name not in FOOTERS and ".youth." not in path.name)
# The notices with a youth wording (program key `audience: youth`, for mentees): name.youth.txt.j2
YOUTH = sorted(path.name.removesuffix(".youth.txt.j2") for path in TEMPLATES.glob("*.youth.txt.j2"))

ITEM = {"id": "q-123", "pair_id": 7, "sender_handle": "Maple", "recipient_handle": "Oak", "subject": "Hello there",
        "held_at": "2026-06-01 16:00", "sent_at": "Monday",
        "reasons": [{"rule": "contact_info", "kind": "phone", "match": "555-0100"}]}
COMMON = {"program_name": "STEMx", "domain": "relay.example", "handle": "Maple", "partner_handle": "Oak",
          "mentee_handle": "Maple", "mentor_handle": "Oak", "away_handle": "Oak", "subject": "Hello there",
          "goals": ["Careers"], "console_url": "https://review.example", "items": [ITEM, {**ITEM, "id": "q-124"}],
          "waited": "3 days", "review_within": "24 hours", "sent_at": "Monday", "count": 2, "pair_id": 7}
URGENT_ITEM = {"id": "q-125", "pair_id": 7, "program_id": "stem", "sender_handle": "Maple", "sender_role": "mentee",
               "recipient_handle": "Oak", "recipient_role": "mentor", "held_at": "2026-06-01 16:00",
               "findings": [{"rule": "keywords", "kind": "self-harm", "match": "self-harm", "severity": "urgent"},
                            {"rule": "contact_info", "kind": "street_address", "match": "12 Elm Street"}]}
# One context per notice and per variant worth showing (each branch of the template renders somewhere).
CONTEXTS: dict[str, list[dict[str, Any]]] = {
    "away_confirmation": [{"until": "10 June 2026"}, {"until": None}],
    "away_partner": [{"until": "10 June 2026", "role": "mentor"}, {"until": None, "role": "mentee"},
                     {"until": "10 June 2026", "role": "mentee"}, {"until": None, "role": "mentor"}],
    "away_unclear": [{"problem": "format", "day": ""}, {"problem": "not_a_date", "day": "2026-13-01"},
                     {"problem": "passed", "day": "2026-05-01"}, {"problem": "ended", "day": ""}],
    "bounce_sender": [{}],
    "cadence_digest": [{}, {"items": [ITEM]}],
    "checkin": [{"started": True, "silent": "2 weeks"}, {"started": False, "silent": "2 weeks"}],
    "closed_notice": [{}],
    "coordinator_console_escalation": [{"moderator": "Kim", "note": "Please look", "sender_handle": "Maple",
                                        "recipient_handle": "Oak", "held_at": "Monday", "reasons": ITEM["reasons"],
                                        "message_id": "q-123"}],
    "coordinator_escalation": [{}, {"items": [ITEM]}, {"items": [{**ITEM, "group_name": "Robotics"}]}],
    "coordinator_unanswered": [{}, {"group_name": "Robotics"}],
    "coordinator_unanswered_digest": [
        {"items": [{"pair_id": 7, "mentee_handle": "Maple", "mentor_handle": "Oak", "waited": "8 days",
                    "subject": "Hello there", "sent_at": "Monday", "count": 1},
                   {"pair_id": 9, "group_name": "Robotics", "mentee_handle": "Ash", "mentor_handle": "Elm",
                    "waited": "9 days", "subject": "Hello there", "sent_at": "Monday", "count": 3}]}],
    "coordinator_undeliverable": [{"role": "mentor"}, {"role": "mentee"}],
    "digest_confirmation": [{"mode": "each", "conversations": "Robotics"},
                            {"mode": "daily", "conversations": "Robotics"},
                            {"mode": "weekly", "conversations": "Robotics"}],
    "digest_contents": [{"mode": "daily", "conversation_name": "Robotics",
                         "lines": [{"number": "1", "sender": "Oak (Robotics)", "subject": "Hello there"}]},
                        {"mode": "weekly", "conversation_name": "Robotics", "lines": []}],
    "digest_unclear": [{"no_group": False}, {"no_group": True}],
    "ending_soon": [{"last_day": "30 June 2026", "exchange": True}],
    "farewell": [{"exchange": True, "conversation_attached": True, "reason": None},
                 {"exchange": False, "conversation_attached": False, "reason": "The school year is over."}],
    "held": [{"notice": None, "held_at": "Monday"}],
    "group_checkin": [{"started": True, "silent": "2 weeks", "group_name": "Robotics",
                       "group_alias": "robotics.x1@relay.example"},
                      {"started": False, "silent": "2 weeks", "group_name": "Robotics",
                       "group_alias": "robotics.x1@relay.example"}],
    "group_closed_coordinator": [{"group_name": "Robotics", "group_id": 9, "reason": "Term ended", "actor": "cli:kim",
                                  "members": ["Oak", "Maple", "Birch"]},
                                 {"group_name": "Robotics", "group_id": 9, "reason": None, "actor": "cli:kim",
                                  "members": ["Oak"]},
                                 {"group_name": "Robotics", "group_id": 9, "reason": None, "actor": "cli:kim",
                                  "members": []}],
    "group_closed_notice": [{"group_name": "Robotics"}],
    "group_ending_soon": [{"group_name": "Robotics", "last_day": "30 June 2026", "role": "mentor"},
                          {"group_name": "Robotics", "last_day": "30 June 2026", "role": "mentee"}],
    "group_farewell": [{"group_name": "Robotics", "reason": "Term ended"}, {"group_name": "Robotics", "reason": None}],
    "group_mentor_left": [{"group_name": "Robotics", "left_handle": "Elm", "mentors": "Oak"},
                          {"group_name": "Robotics", "left_handle": "Elm", "mentors": ""}],
    "group_no_mentor_coordinator": [{"group_name": "Robotics", "group_id": 9, "left_handle": "Elm",
                                     "mentees": ["Maple", "Birch"]},
                                    {"group_name": "Robotics", "group_id": 9, "left_handle": "Elm",
                                     "mentees": ["Maple"]}],
    "group_welcome": [{"role": "mentor", "group_name": "Robotics", "group_alias": "robotics.x1@relay.example",
                       "private_alias": "oak.x2@relay.example", "others": [], "answer_within": "48 hours"},
                      {"role": "mentee", "group_name": "Robotics", "group_alias": "robotics.x1@relay.example",
                       "private_alias": "maple.x3@relay.example", "others": ["Oak", "Birch"],
                       "answer_within": "48 hours"}],
    "help_confirmation": [{"concern": True, "paused": [7], "paused_groups": []},
                          {"concern": True, "paused": [7], "paused_groups": [{"id": 9, "name": "Robotics"}]},
                          {"concern": False, "paused": [], "paused_groups": []}],
    "help_coordinator": [{"concern": True, "paused": [7, 8], "member_role": "mentee", "text": "Body",
                          "paused_groups": [{"id": 9, "name": "Robotics"}],
                          "pairs": [{"id": 7, "role": "mentee", "partner_handle": "Oak"},
                                    {"id": 8, "role": "mentor", "partner_handle": "Ash"}]},
                         {"concern": True, "paused": [7], "member_role": "mentor", "text": "Body", "paused_groups": [],
                          "pairs": [{"id": 7, "role": "mentor", "partner_handle": "Oak"}]},
                         {"concern": False, "paused": [], "member_role": "mentee", "text": "Body", "pairs": [],
                          "paused_groups": []},
                         {"concern": False, "paused": [], "member_role": "mentee", "text": "Body", "pairs": [],
                          "paused_groups": [], "pair_id": None, "group_name": "Robotics",
                          "groups": [{"id": 9, "role": "mentee", "name": "Robotics"},
                                     {"id": 10, "role": "mentor", "name": "Chess"}]},
                         {"concern": True, "paused": [], "member_role": "mentor", "text": "Body", "pairs": [],
                          "paused_groups": [{"id": 9, "name": "Robotics"}], "pair_id": None, "group_name": "Robotics",
                          "groups": [{"id": 9, "role": "mentor", "name": "Robotics"}]}],
    "moderator_held": [{}, {"items": [ITEM]}, {"items": [{**ITEM, "group_name": "Robotics"}]}],
    "moderator_reminder": [{}, {"items": [ITEM]}],
    "nudge_mentor": [{"second": False}, {"second": True}, {"second": False, "group_name": "Robotics"},
                     {"second": True, "group_name": "Robotics"}],
    "pair_closed_coordinator": [{"reason": "Moved school", "actor": "cli:kim", "farewell_sent": True,
                                 "exchange": True, "exchange_withheld": False},
                                {"reason": None, "actor": "kim", "farewell_sent": False, "exchange": False,
                                 "exchange_withheld": True}],
    "partner_away": [{}],
    "program_ended_coordinator": [{"reason": "The term is over", "actor": "cli:kim",
                                   "pairs": [{"id": 7, "mentor": "Oak", "mentee": "Maple"},
                                             {"id": 8, "mentor": "Elm", "mentee": "Ash"}],
                                   "groups": [{"id": 9, "name": "Robotics"}]},
                                  {"reason": None, "actor": "kim", "pairs": [{"id": 7, "mentor": "Oak",
                                                                              "mentee": "Maple"}], "groups": []}],
    "rejected": [{"notice": None, "reason": "Off topic"}],
    "rejected_by_moderator": [{"reason": "Please be kind about your teachers."}],
    "moderator_rejected": [{"policy": "youth-strict"},
                           {"policy": "youth-strict", "items": [ITEM], "console_url": None}],
    "safeguarding_escalation": [{"item": URGENT_ITEM, "moderator": "Kim", "note": "Please call today",
                                 "lead": "lead@school.example"},
                                {"item": URGENT_ITEM, "moderator": "Kim", "note": "", "lead": None,
                                 "console_url": None}],
    "safeguarding_followup": [{"items": [URGENT_ITEM], "within": "1 hour"},
                              {"items": [URGENT_ITEM, {**URGENT_ITEM, "id": "q-126"}], "within": "1 hour",
                               "console_url": None}],
    "safeguarding_help": [{"help_text": None, "held_at": "Monday"},
                          {"help_text": "Childline 0800 1111", "held_at": "Monday"}],
    "safeguarding_lead": [{"item": URGENT_ITEM, "within": "1 hour"},
                          {"item": {**URGENT_ITEM, "group_name": "Robotics"}, "within": "1 hour"},
                          {"item": URGENT_ITEM, "within": "1 hour", "console_url": None}],
    "safeguarding_undelivered": [{"item": URGENT_ITEM, "failed_to": "lead@school.example",
                                  "error": "550 5.1.1 no such mailbox"},
                                 {"item": {**URGENT_ITEM, "group_name": "Robotics"}, "failed_to": "lead@school.example",
                                  "error": "no answer yet", "console_url": None},
                                 {"item": {**URGENT_ITEM, "address": "help@relay.example", "findings": [],
                                           "signs": ["abuse", "self-harm"]},
                                  "failed_to": "lead@school.example", "error": "550 5.1.1 no such mailbox",
                                  "coordinator": "coordinator@school.example"},
                                 {"item": {**URGENT_ITEM, "address": "concern@relay.example", "findings": [],
                                           "signs": [], "group_name": "Robotics"},
                                  "failed_to": "coordinator@school.example", "error": "no answer yet",
                                  "coordinator": "coordinator@school.example"}],
    "safeguarding_stranger": [{"pair_id": 7, "group_name": None, "recipient": "Oak", "recipient_role": "mentor",
                               "sender": "jane.school@school.example", "envelope": None, "received": "Monday",
                               "findings": URGENT_ITEM["findings"], "subject": "its me", "text": "Help"},
                              {"pair_id": 9, "group_name": "Robotics", "recipient": "the group Robotics",
                               "recipient_role": "group", "sender": "jane.school@school.example",
                               "envelope": "bounce@school.example", "received": "Monday", "findings": [],
                               "subject": "(no subject)", "text": ""},
                              {"pair_id": 7, "group_name": None, "recipient": "Oak", "recipient_role": "mentor",
                               "sender": "jane@school.example", "envelope": None, "received": "Monday",
                               "findings": [], "subject": "its me", "text": "Help", "folded": 12, "last": True,
                               "pages": 3}],
    "safeguarding_stranger_undelivered": [
        {"pair_id": 7, "group_name": None, "recipient": "Oak", "recipient_role": "mentor", "received": "Monday",
         "signs": "abuse, self-harm", "sender": "jane.school@school.example", "envelope": "bounce@school.example",
         "told": "coordinator@school.example", "failed_to": "lead@school.example",
         "error": "550 5.1.1 no such mailbox"},
        {"pair_id": 7, "group_name": None, "recipient": "Oak", "recipient_role": "mentor", "received": "Monday",
         "signs": "abuse", "sender": None, "envelope": None, "told": "coordinator@school.example",
         "failed_to": "lead@school.example", "error": "no answer yet"},
        {"pair_id": 9, "group_name": "Robotics", "recipient": "the group Robotics", "recipient_role": "group",
         "received": "Monday", "signs": "self-harm", "sender": None, "envelope": None, "told": "",
         "failed_to": "coordinator@school.example", "error": "550 5.1.1 no such mailbox"}],
    "safeguarding_moderators": [{"item": URGENT_ITEM, "lead": "lead@school.example"},
                                {"item": URGENT_ITEM, "lead": "", "console_url": None}],
    "share_confirmation": [{"answer": "yes"}, {"answer": "no"}],
    "share_done": [{"partner_name": "Josef Brandt", "partner_email": "oak@example.net"}],
    "share_unclear": [{"problem": "answer"}, {"problem": "not_ended"}, {"problem": "not_allowed"},
                      {"problem": "not_offered"}, {"problem": "withheld"},
                      {"problem": "which", "handles": "Maple, Willow", "example": "Maple"}],
    "welcome": [{"role": "mentor", "partner_role": "mentee", "partner_alias": "maple.x1@relay.example",
                 "end_date": "18 December 2026", "answer_within": "48 hours", "safeguarding_help": None},
                {"role": "mentee", "partner_role": "mentor", "partner_alias": "oak.x2@relay.example",
                 "end_date": None, "answer_within": "48 hours", "safeguarding_help": "Childline 0800 1111"},
                {"role": "mentee", "partner_role": "mentor", "partner_alias": "oak.x2@relay.example",
                 "end_date": "18 December 2026", "answer_within": "48 hours", "safeguarding_help": None}],
}


# Command lines are the same in every language, like names and addresses.
COMMANDS = ["mentor-relay held release ID / held reject ID --reason TEXT", "mentor-relay pair resume ID",
            "mentor-relay group resume 9"]


def contexts(name: str) -> list[dict[str, Any]]:
    return [{**COMMON, **variant} for variant in CONTEXTS[name]]


def values_in(context: dict[str, Any]) -> list[str]:
    """Every string a context brings (names, handles, addresses, subjects, dates...)."""
    found: list[str] = []
    for value in context.values():
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list | dict):
            found.extend(values_in(value if isinstance(value, dict) else dict(enumerate(value))))
    return found


def sentences(text: str) -> list[str]:
    """Stretches of 3+ words between punctuation: what a reader would see as English left behind."""
    parts = re.split(r"[\n.!?:;,()\"«»“”—]", text)
    return [" ".join(part.split()) for part in parts if len(part.split()) >= 3]


def test_every_notice_has_contexts() -> None:
    assert sorted(CONTEXTS) == NAMES


def pot() -> dict[Any, Any]:
    """The strings of the templates as they are now (pybabel extract's job, done in the test)."""
    method_map = [("**.j2", "jinja2")]
    options = {"**.j2": {"extensions": "jinja2.ext.i18n", "trimmed": "true", "trim_blocks": "true",
                         "lstrip_blocks": "true"}}
    found: dict[Any, Any] = {}
    for _file, _line, message, _comments, _context in extract_from_dir(str(TEMPLATES), method_map, options):
        found[message if isinstance(message, str) else tuple(message[:2])] = message
    return found


@pytest.mark.parametrize("language", TRANSLATED)
def test_the_catalog_is_complete_and_compiled(language: str) -> None:
    po_path = LOCALES / language / "LC_MESSAGES" / "notices.po"
    with po_path.open("rb") as source:
        catalog = read_po(source, locale=language)
    wanted = pot()
    assert wanted, "no strings found in the templates"
    problems = []
    for key in wanted:
        message = catalog.get(key[0] if isinstance(key, tuple) else key)
        if message is None:
            problems.append(f"missing: {key!r}")
        elif message.fuzzy:
            problems.append(f"fuzzy: {key!r}")
        elif not all(message.string) if isinstance(message.string, tuple) else not message.string:
            problems.append(f"empty: {key!r}")
    for message, errors in catalog.check():
        problems.extend(f"{message.id!r}: {error}" for error in errors)
    assert problems == []
    compiled = BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    shipped = (LOCALES / language / "LC_MESSAGES" / "notices.mo").read_bytes()
    assert compiled.getvalue() == shipped, f"{language}: notices.mo is older than notices.po: run make translations"


class _Html(HTMLParser):
    VOID: ClassVar[set[str]] = {"meta", "br", "hr", "img", "link", "input"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.root: dict[str, str | None] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "html":
            self.root = dict(attrs)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
        else:
            self.stack.pop()


@pytest.mark.parametrize("language", SHIPPED)
@pytest.mark.parametrize("name", NAMES)
def test_every_notice_renders_in_every_language(name: str, language: str) -> None:
    check_notice(name, language, None)


@pytest.mark.parametrize("language", SHIPPED)
@pytest.mark.parametrize("name", YOUTH)
def test_every_youth_notice_renders_in_every_language(name: str, language: str) -> None:
    check_notice(name, language, "youth")
    pairs = [(notice(name, language, **context).text, notice(name, language, audience="youth", **context).text)
             for context in contexts(name)]
    assert any(plain != youth for plain, youth in pairs)  # a wording of its own, not a copy


def check_notice(name: str, language: str, audience: str | None) -> None:
    """One notice in one language, every context: complete, no English sentence left, HTML well formed."""
    for context in contexts(name):
        if audience and context.get("role", "mentee") != "mentee" and name != "away_partner":
            continue  # the youth wording is for mentees
        english = notice(name, "en", audience=audience, **context)
        mine = notice(name, language, audience=audience, **context)
        assert mine.subject.strip() and mine.text.strip()
        assert "{{" not in mine.text and "%(" not in mine.text and "%(" not in mine.subject
        if language != "en":
            keep = values_in(context) + COMMANDS
            left = [s for s in sentences(english.subject + "\n" + english.text)
                    if not any(s in value for value in keep) and s in mine.subject + "\n" + mine.text]
            assert left == [], f"English left in the {language} {name}"
        if english.html is not None:
            assert mine.html is not None
            parser = _Html()
            parser.feed(mine.html)
            parser.close()
            assert parser.errors == [] and parser.stack == []
            assert parser.root == {"lang": language, "dir": "rtl" if language == "ar" else "ltr"}
            if language != "en":
                text_of_html = re.sub(r"<[^>]+>", "\n", english.html)
                keep = values_in(context)
                left = [s for s in sentences(text_of_html) if not any(s in v for v in keep) and s in mine.html]
                assert left == [], f"English left in the {language} HTML {name}"


# The staff notices about urgent mail: a concern or a disclosure (help_coordinator with concern), an urgent hold.
URGENT_NOTICES = ["help_coordinator", "safeguarding_escalation", "safeguarding_followup", "safeguarding_lead",
                  "safeguarding_moderators", "safeguarding_stranger", "safeguarding_stranger_undelivered",
                  "safeguarding_undelivered"]


@pytest.mark.parametrize("language", SHIPPED)
def test_every_urgent_subject_starts_with_the_literal_urgent(language: str) -> None:
    """docs/policies.md: leads and their filters rely on the subject of every urgent mail starting with the
    literal "URGENT", in every language (a translated "[СРОЧНО] ..." or "[URGENT concern] ..." escapes them)."""
    urgent: set[str] = set()
    for name in NAMES:
        for context in contexts(name):
            english = notice(name, "en", **context).subject
            if "URGENT" not in english.upper() and "urgent" not in english:
                continue
            urgent.add(name)
            subject = notice(name, language, **context).subject
            assert subject.startswith("URGENT: "), f"{name} in {language}: {subject!r}"
    assert urgent == set(URGENT_NOTICES)


def test_arabic_is_right_to_left_and_the_others_are_not() -> None:
    assert [direction(language) for language in SHIPPED] == ["ltr", "ltr", "ltr", "rtl", "ltr"]
    html = notice("welcome", "ar", **contexts("welcome")[0]).html
    assert html is not None and '<html lang="ar" dir="rtl">' in html and "أهلًا بك في STEMx" in html


def test_the_help_footer_is_translated() -> None:
    english = render("help_answer_footer.txt.j2", "en", program_name="STEMx", domain="relay.example")
    russian = render("help_answer_footer.txt.j2", "ru", program_name="STEMx", domain="relay.example")
    assert "through the relay" in english and "ретранслятор" in russian and "through the relay" not in russian


def test_the_private_word_footer_is_translated() -> None:
    """A private word's copy in a group says, in the reader's language, that Reply answers the sender alone."""
    values = {"sender_handle": "Maple", "group_name": "Robotics", "sender_address": "maple.x1@relay.example"}
    english = render("group_private_footer.txt.j2", "en", **values)
    assert english.strip() == ("Maple wrote to you privately, not to the group Robotics. Reply to answer Maple "
                               "alone, at maple.x1@relay.example")
    for language in TRANSLATED:
        text = render("group_private_footer.txt.j2", language, **values)
        assert text != english and "privately" not in text, language
        assert text.count("Maple") == 2 and "Robotics" in text and "maple.x1@relay.example" in text, language


def test_dates_and_durations_in_the_readers_language_and_zone() -> None:
    at = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
    assert format_when(at, "en", "Europe/Berlin") == "Monday, 1 June 2026, 16:00 (Europe/Berlin)"
    assert format_when(at, "es", "America/Bogota") == "lunes, 1 de junio de 2026, 9:00 (America/Bogota)"
    assert format_when(at, "ru", "Asia/Yerevan") == "понедельник, 1 июня 2026\u202fг., 18:00 (Asia/Yerevan)"
    assert "UTC" not in format_when(at, "fr", "Europe/Paris") and "2026-06-01" not in format_when(at, "fr", "UTC")
    assert format_day(date(2026, 12, 18), "fr") == "18 décembre 2026"
    assert format_duration(timedelta(hours=48), "en") == "48 hours"
    assert format_duration(timedelta(days=14), "es") == "2 semanas"
    assert format_duration(timedelta(days=4), "ru") == "4 дня"


def test_a_date_and_time_read_as_babel_writes_the_moment_itself_in_every_locale() -> None:
    """format_when asks Babel once per day and once per hour and minute (a sweep writes thousands): in every
    locale Babel knows, that is what Babel writes for the whole moment in the reader's zone, afternoon and
    night, across a change of summer time."""
    moments = [datetime(2026, 3, 29, 0, 30, tzinfo=UTC), datetime(2026, 3, 29, 1, 30, tzinfo=UTC),
               datetime(2026, 6, 1, 14, 5, tzinfo=UTC), datetime(2026, 12, 31, 23, 59, tzinfo=UTC)]
    for name in locale_identifiers():
        where = locale(name)  # the locale the relay writes dates in for this language
        for at in moments:
            for zone in ("Europe/Berlin", "Asia/Kolkata", "America/Los_Angeles"):
                local = at.astimezone(ZoneInfo(zone))
                whole = f"{format_date(local, 'full', locale=where)}, {format_time(local, 'short', locale=where)}"
                assert format_when(at, name, zone) == f"{whole} ({zone})", name


def test_a_program_template_replaces_ours_for_every_notice(tmp_path: Path) -> None:
    for name in NAMES:
        (tmp_path / f"{name}.txt.j2").write_text("Ours for {{ program_name }}.\n")
    for name in NAMES:
        for context in contexts(name):
            rendered = notice(name, "es", folder=tmp_path, **context)
            assert rendered.text == "Ours for STEMx.\n"
            assert rendered.subject == notice(name, "es", **context).subject  # no subject block: ours


def test_a_program_po_file_adjusts_a_language_and_adds_one(tmp_path: Path) -> None:
    (tmp_path / "es.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Hello %(handle)s,"\nmsgstr "¡Buenas, %(handle)s!"\n', encoding="utf-8")
    (tmp_path / "pt-BR.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Hello %(handle)s,"\nmsgstr "Olá, %(handle)s,"\n', encoding="utf-8")
    (tmp_path / "pt_BR.po").write_bytes((tmp_path / "pt-BR.po").read_bytes())
    context = contexts("welcome")[1]
    spanish = notice("welcome", "es", folder=tmp_path, **context)
    assert spanish.text.startswith("¡Buenas, Maple!") and "¡Bienvenido a STEMx!" in spanish.text  # ours for the rest
    portuguese = notice("welcome", "pt-BR", folder=tmp_path, **context)
    assert portuguese.text.startswith("Olá, Maple,") and '<html lang="pt-BR" dir="ltr">' in (portuguese.html or "")
    assert check("pt-BR", tmp_path) == "pt_BR"
    with pytest.raises(LanguageError, match="available: ar, en, es, fr, ru"):
        check("xx")


POLICIES = Path(__file__).resolve().parent.parent / "policies"


def _with_own_texts() -> list[Path]:
    """The shipped policies that write their own held or rejected text (the others use the relay's own,
    translated by the catalogs above)."""
    from relay.moderation.policy import parse_policy

    return [path for path in sorted(POLICIES.glob("*.yaml"))
            if parse_policy(path).notices.held or parse_policy(path).notices.rejected]


def test_youth_strict_writes_its_own_notice_texts() -> None:
    """(So that the test below reads at least one policy's texts.)"""
    assert "youth-strict" in [path.stem for path in _with_own_texts()]


@pytest.mark.parametrize("policy_file", _with_own_texts(), ids=lambda path: path.stem)
def test_a_shipped_policys_own_notice_texts_are_given_in_every_shipped_language(policy_file: Path) -> None:
    """A shipped policy that writes its own held or rejected text gives it in every shipped language, each a
    translation (no English sentence of it left), and each reader's notice shows the one of their language."""
    from relay.moderation.policy import parse_policy

    policy = parse_policy(policy_file)
    for kind in ("held", "rejected"):
        texts = getattr(policy.notices, kind) or {}
        if not texts:
            continue  # the relay's own text, translated by the catalogs above
        assert sorted(texts) == sorted(SHIPPED), f"{policy_file.name}: notices.{kind} in {sorted(texts)}"
        for language in SHIPPED:
            own = policy.notices.text(kind, language, language)
            assert own is not None and " ".join(own.split()) == " ".join(texts[language].split())
            for audience in (None, "youth"):
                shown = notice(kind, language, audience=audience, **{**contexts(kind)[0], "notice": own}).text
                assert " ".join(own.split()) in " ".join(shown.split())
            if language != "en":
                left = [s for s in sentences(texts["en"]) if s in texts[language]]
                assert left == [], f"English left in {policy_file.name} notices.{kind}.{language}"
        assert policy.notices.text(kind, "es-MX", "es") == policy.notices.text(kind, "es", "es")


def test_a_policy_text_without_the_readers_language_gives_way_to_ours_translated() -> None:
    """A policy text given in English only (a plain string, as older policies write it) is for English
    readers: a French reader gets the relay's own text in French, never the policy's English; a reader whose
    language the relay cannot write (notice in English) gets the policy's English text."""
    from relay.moderation.policy import Notices

    plain = Notices.model_validate({"held": "Every message is read by a moderator first here.",
                                    "rejected": {"en": "No contact details, please.", "fr": "Pas de coordonnées."}})
    assert plain.text("held", "en", "en") == "Every message is read by a moderator first here."
    assert plain.text("held", "fr", "fr") is None and plain.text("rejected", "ar", "ar") is None
    assert plain.text("rejected", "fr-CA", "fr") == "Pas de coordonnées."
    assert plain.text("held", "de", "en") == "Every message is read by a moderator first here."
    french = notice("held", "fr", **{**contexts("held")[0], "notice": plain.text("held", "fr", "fr")}).text
    assert "Merci pour ton message." in french and "moderator" not in french
    assert Notices().text("held", "en", "en") is None and Notices.model_validate({"held": None}).held is None
