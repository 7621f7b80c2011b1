"""The moderation rules one by one: what each finds, what it must leave alone, and its parameters."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from relay.moderation.findings import Finding
from relay.moderation.inspection import Attachment, Inspection, PairStats
from relay.moderation.rules import attachment, contact_rule, first_messages, identity, keywords, rate
from relay.moderation.rules.registry import RULES
from relay.sizes import parse_size
from tests.support import REPO

ALIASES = ("blue-heron.k3x9pq@relay.example", "quiet-fox.7mnb2c@relay.example")


def inspect(text: str = "", **fields: Any) -> Inspection:
    return Inspection(text=text, subject="", **fields)


def spans_hold(inspection: Inspection, findings: list[Finding]) -> bool:
    return all(inspection.text[f.start : f.end] == f.match for f in findings if f.start != -1)


def matches(findings: list[Finding]) -> list[str]:
    return [f.match for f in findings]


# ------------------------------------------------------------------------------------------------ registry
def test_registry_names_every_rule_by_its_module_name() -> None:
    assert set(RULES) == {"identity", "attachment", "keywords", "rate", "first_messages", "contact_info"}
    for name, module in RULES.items():
        assert name == module.NAME
        assert issubclass(module.Params, BaseModel)
        assert module.Params.model_config["extra"] == "forbid"
        assert module.Params.model_config["frozen"] is True
        assert callable(module.check)


@pytest.mark.parametrize("name", ["identity", "attachment", "rate", "first_messages", "contact_info"])
def test_params_have_defaults_and_forbid_unknown_keys(name: str) -> None:
    params_class = RULES[name].Params
    params_class()
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        params_class.model_validate({"no_such_key": 1})


def test_params_are_frozen() -> None:
    params = rate.Params()
    with pytest.raises(ValidationError):
        params.max_per_day = 3  # type: ignore[misc]


SAMPLE = inspect(
    "Hi Priya Raman! I'm Jose Mueller, jose.mueller@gmail.com, call 415-555-0132. Let's meet up, no CAFÉ.",
    attachments=[Attachment("photo.jpg.exe", "image/jpeg", 10)],
    sender_name="José Müller",
    sender_email="jose.mueller@gmail.com",
    recipient_name="Priya Raman",
    recipient_email="priya@example.org",
    domain="relay.example",
    aliases=ALIASES,
    stats=PairStats(messages_total=0, messages_last_24h=30),
)
SAMPLE_PARAMS = {"keywords": {"words": ["meet up", "cafe"]}}


@pytest.mark.parametrize("name", sorted(RULES))
def test_every_rule_names_itself_and_its_offsets_point_at_its_match(name: str) -> None:
    module = RULES[name]
    findings = module.check(SAMPLE, module.Params.model_validate(SAMPLE_PARAMS.get(name, {})))
    assert findings
    assert {f.rule for f in findings} == {name}
    assert spans_hold(SAMPLE, findings)
    assert all((f.start, f.end) == (-1, -1) or 0 <= f.start < f.end <= len(SAMPLE.text) for f in findings)


# ------------------------------------------------------------------------------------------------ identity
PEOPLE = {
    "sender_name": "José Müller",
    "sender_email": "jose.mueller+mentor@gmail.com",
    "recipient_name": "Priya Raman",
    "recipient_email": "priya@example.org",
    "aliases": ALIASES,
}


def identify(text: str, **params: Any) -> list[Finding]:
    inspection = inspect(text, **PEOPLE)
    findings = identity.check(inspection, identity.Params(**params))
    assert spans_hold(inspection, findings)
    return findings


def test_identity_flags_a_surviving_full_name_once_and_not_the_handle() -> None:
    findings = identify("Thanks!\n-- \nJose Mueller (Blue Heron)")
    assert [(f.kind, f.match) for f in findings] == [("own_name", "Jose Mueller")]


@pytest.mark.parametrize("written", ["Müller", "Muller", "Mueller", "MÜLLER", "MUELLER", "Jose", "JOSÉ"])
def test_identity_finds_name_parts_with_or_without_accents(written: str) -> None:
    findings = identify(f"Signed, {written}.")
    assert [(f.kind, f.match) for f in findings] == [("own_name", written)]


def test_identity_takes_a_lowercase_name_part_for_an_ordinary_word() -> None:
    inspection = inspect("I will write again, as Will said: full names count in any case, like jose mueller.",
                         sender_name="Will Byers", recipient_name="José Müller")
    judged = identity.Params(common_word_parts="judged")
    assert matches(identity.check(inspection, judged)) == ["Will", "jose mueller"]
    # By default every form is reported, the ordinary use marked as a word, so the policy decides.
    assert [(f.kind, f.match) for f in identity.check(inspection, identity.Params())] == [
        ("own_name_word", "will"), ("own_name", "Will"), ("partner_name", "jose mueller")]


def test_identity_finds_umlauts_for_a_name_enrolled_with_them_written_out() -> None:
    inspection = inspect("Best, José MÜLLER", sender_name="Jose Mueller")
    assert matches(identity.check(inspection, identity.Params())) == ["José MÜLLER"]


def test_identity_finds_a_name_written_with_decomposed_accents_and_across_lines() -> None:
    text = "Bye, Jose\u0301\nMu\u0308ller"
    assert matches(identify(text)) == [text[5:]]


def test_identity_finds_the_partner_and_both_addresses_with_or_without_tag() -> None:
    text = "Dear priya raman, mail JOSE.MUELLER@GMAIL.COM or jose.mueller+x@gmail.com; cc priya+chat@example.org"
    kinds = [(f.kind, f.match) for f in identify(text)]
    assert kinds == [
        ("partner_name", "priya raman"),
        ("own_address", "JOSE.MUELLER@GMAIL.COM"),
        ("own_address", "jose.mueller+x@gmail.com"),
        ("partner_address", "priya+chat@example.org"),
    ]


def test_identity_matches_whole_words_and_whole_addresses_only() -> None:
    text = "Josefina and Priyanka met Ramanujan at notpriya@example.org and Priya@example.org.evil.com"
    assert [f.kind for f in identify(text)] == ["partner_name"]  # "Priya" in the second address, not the address


def test_identity_ignores_its_handles_aliases() -> None:
    inspection = inspect(
        "Reply to jose-fan.k3x9pq@relay.example", sender_name="Jose Smith", aliases=("jose-fan.k3x9pq@relay.example",)
    )
    assert identity.check(inspection, identity.Params()) == []


def test_identity_name_parts_need_three_letters_and_can_be_turned_off() -> None:
    inspection = inspect(
        "Jo said hi to Lee and to Jo Lee; Anne-Marie and Marie",
        sender_name="Jo Lee",
        recipient_name="Anne-Marie Dupont",
    )
    findings = identity.check(inspection, identity.Params(common_word_parts="judged"))
    assert [(f.kind, f.match) for f in findings] == [
        ("own_name", "Jo"),  # a given name, not a common word: "Jo said" at a sentence start is the name
        ("own_name", "Lee"),
        ("own_name", "Jo Lee"),
        ("partner_name", "Anne-Marie"),
        ("partner_name", "Marie"),
    ]
    findings = identity.check(inspection, identity.Params(check_name_parts=False, common_word_parts="judged"))
    assert [(f.kind, f.match) for f in findings] == [("own_name", "Jo Lee")]
    # A two-letter part in lower case ("jo" in running text) is reported by default, as a word.
    lower = inspect("we jo-ked about it", sender_name="Jo Lee")
    assert [(f.kind, f.match) for f in identity.check(lower, identity.Params())] == [("own_name_word", "jo")]


def test_identity_with_no_identities_or_clean_text_finds_nothing() -> None:
    assert identity.check(inspect("Hello Jose Mueller"), identity.Params()) == []
    assert identify("Hello Blue Heron, see you Tuesday at quiet-fox.7mnb2c@relay.example") == []


def test_identity_params_are_checked() -> None:
    with pytest.raises(ValidationError):
        identity.Params.model_validate({"check_name_parts": "sometimes"})
    with pytest.raises(ValidationError):
        identity.Params.model_validate({"check_name_parts": 1})


# ---------------------------------------------------------------------------------------------- attachment
def attach(*attachments: Attachment, **params: Any) -> list[tuple[str, str]]:
    findings = attachment.check(inspect(attachments=list(attachments)), attachment.Params(**params))
    assert all((f.start, f.end) == (-1, -1) for f in findings)
    return [(f.kind, f.match) for f in findings]


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("photo.jpg", "image/jpeg"),
        ("scan.PNG", "image/png"),
        ("cv.pdf", "application/pdf; name=cv.pdf"),
        ("notes.txt", "text/plain"),
        ("essay.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        ("essay.docx", "application/octet-stream"),
        ("photo.jpeg", "application/octet-stream"),
        ("budget.xls", "application/vnd.ms-excel"),
        ("report.jpg.pdf", "application/pdf"),
    ],
)
def test_attachment_allows_ordinary_files(filename: str, content_type: str) -> None:
    assert attach(Attachment(filename, content_type, 200_000)) == []


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("homework.zip", "application/octet-stream"),
        ("homework.ZIP", "application/octet-stream"),
        ("homework.7z", "application/octet-stream"),
        ("photos.tar.gz", "application/octet-stream"),
        ("archive", "application/x-rar-compressed"),
        ("photos.zip", "application/zip"),
    ],
)
def test_attachment_flags_archives_by_extension_or_type(filename: str, content_type: str) -> None:
    assert attach(Attachment(filename, content_type, 1000)) == [("archive", filename)]
    assert attach(Attachment(filename, content_type, 1000), archives="allow") == []


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("photo.jpg.exe", "image/jpeg"),
        ("photo.jpg.exe", "application/octet-stream"),
        ("photo.jpg.EXE. ", "image/jpeg"),
        ("photo\u202egpj.exe", "image/jpeg"),  # shows as "photoexe.jpg"
        ("setup", "application/x-msdownload"),
        ("game.apk", "application/vnd.android.package-archive"),
        ("run.sh", "text/plain"),
        ("invoice.docm", "application/octet-stream"),
        ("budget.xlsm", "application/vnd.ms-excel.sheet.macroEnabled.12"),
        ("tool.jar", "application/zip"),
    ],
)
def test_attachment_flags_executables_however_they_are_dressed(filename: str, content_type: str) -> None:
    assert attach(Attachment(filename, content_type, 1000)) == [("executable", filename)]
    assert attach(Attachment(filename, content_type, 1000), executables="allow") == []


def test_attachment_flags_types_not_allowed() -> None:
    found = attach(
        Attachment("clip.mp4", "video/mp4", 1000),
        Attachment("blob.bin", "application/octet-stream", 1000),
        Attachment(None, "Audio/MPEG; name=x", 1000),
    )
    assert found == [
        ("type_not_allowed", "clip.mp4"),
        ("type_not_allowed", "blob.bin"),
        ("type_not_allowed", "unnamed audio/mpeg"),
    ]
    assert attach(Attachment("photo.jpg", "image/jpeg", 1000), allowed_types=["application/pdf"]) == [
        ("type_not_allowed", "photo.jpg")
    ]
    assert attach(Attachment("clip.mp4", "video/mp4", 1000), allowed_types=["Video/*"]) == []


def test_attachment_size_limit_is_per_attachment() -> None:
    assert attach(Attachment("big.jpg", "image/jpeg", 10_000_000)) == []
    assert attach(Attachment("big.jpg", "image/jpeg", 10_000_001)) == [("too_large", "big.jpg")]
    assert attach(Attachment("a.jpg", "image/jpeg", 600_000), max_size="512KB") == [("too_large", "a.jpg")]
    assert attach(Attachment("a.zip", "application/zip", 2_000_000), max_size="1.5 MiB") == [
        ("archive", "a.zip"),
        ("too_large", "a.zip"),
    ]


def test_attachment_count_limit() -> None:
    five = [Attachment(f"p{i}.png", "image/png", 100) for i in range(5)]
    assert attach(*five) == []
    assert attach(*five, Attachment("p5.png", "image/png", 100)) == [("too_many", "6 attachments (at most 5)")]
    assert attach(*five, max_count=4) == [("too_many", "5 attachments (at most 4)")]


@pytest.mark.parametrize(
    "params",
    [
        {"max_size": "ten megs"},
        {"max_size": "10 MBs"},
        {"max_size": True},
        {"max_size": -1},
        {"max_size": 1.5},
        {"max_count": "5"},
        {"max_count": -1},
        {"archives": "block"},
        {"executables": False},
        {"allowed_types": "image/*"},
        {"forbidden_types": ["video/*"]},
    ],
)
def test_attachment_params_are_checked(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        attachment.Params.model_validate(params)


@pytest.mark.parametrize(
    ("written", "size"),
    [(0, 0), (2048, 2048), ("100", 100), ("512KB", 512_000), ("10MB", 10_000_000), ("10 mb", 10_000_000),
     ("1.5 MiB", 1_572_864), ("64KiB", 65_536), ("2GB", 2_000_000_000), ("12 B", 12)],
)  # fmt: skip
def test_parse_size(written: object, size: int) -> None:
    assert parse_size(written) == size


# ------------------------------------------------------------------------------------------------ keywords
def keyword_findings(text: str, *words: str, name: str | None = None) -> list[Finding]:
    inspection = inspect(text)
    findings = keywords.check(inspection, keywords.Params(words=list(words), name=name))
    assert spans_hold(inspection, findings)
    return findings


def test_keywords_ignore_case_and_accents_and_keep_the_text_as_written() -> None:
    text = "Meet me at the CAFÉ, or the Café, or the cafe\u0301 on the Straße."
    assert matches(keyword_findings(text, "cafe", "strasse")) == ["CAFÉ", "Café", "cafe\u0301", "Straße"]
    assert matches(keyword_findings("on the STRASSE", "Straße")) == ["STRASSE"]
    assert matches(keyword_findings("NAÏVE plan", "naive")) == ["NAÏVE"]


def test_keywords_offsets_survive_characters_that_fold_to_a_different_length() -> None:
    text = "Große ﬁne Ｓｔｒａｓｓｅ, Jose\u0301 then: kill."
    found = keyword_findings(text, "kill", "strasse", "jose")
    assert matches(found) == ["Ｓｔｒａｓｓｅ", "Jose\u0301", "kill"]
    assert found[-1].start == text.index("kill")


def test_keywords_match_whole_words_only() -> None:
    assert keyword_findings("a useful skill, skills, killer app, overkill", "kill") == []
    assert matches(keyword_findings("Kill! (kill) kill.", "kill")) == ["Kill", "kill", "kill"]


def test_keyword_phrases_match_across_whitespace_and_lines() -> None:
    text = "Let's Meet   up, or meet\nup, or meet\u00a0UP, but not meetup or meet-up."
    assert matches(keyword_findings(text, "meet up")) == ["Meet   up", "meet\nup", "meet\u00a0UP"]


def test_keywords_the_longest_overlapping_phrase_wins() -> None:
    assert matches(keyword_findings("let's meet up soon, meet later", "meet", "meet up")) == ["meet up", "meet"]


def test_keywords_in_other_scripts() -> None:
    assert matches(keyword_findings("ПРИВЕТ, привет, приветствую", "Привет")) == ["ПРИВЕТ", "привет"]
    assert matches(keyword_findings("ΚΑΛΗΜΕΡΑ και καλημέρα", "καλημερα")) == ["ΚΑΛΗΜΕΡΑ", "καλημέρα"]
    assert matches(keyword_findings("明日会おうね", "会おう")) == ["会おう"]


def _spellings(phrase: str) -> list[str]:
    """A listed phrase as children and evaders write it: as listed, in capitals, each letter stretched, a
    hyphen left out or made a space, an apostrophe left out, a zero-width space inside a word and between
    words, letters set apart by spaces, an emoji between the words."""
    stretched = "".join(c * 3 if c.isalpha() else c for c in phrase)
    first = phrase.split(" ")[0]
    return [phrase, phrase.upper(), stretched, phrase.replace("-", ""), phrase.replace("-", " "),
            phrase.replace("'", ""), phrase.replace(" ", "\u200b"), phrase[:2] + "\u200b" + phrase[2:],
            " ".join(first) + phrase[len(first):], phrase.replace(" ", " \U0001f62d ")]


@pytest.mark.timeout(300)  # about 25 s of CPU for some 3000 listed phrases: minutes on a busy machine
def test_the_keyword_lists_find_what_the_whole_list_finds_though_only_some_phrases_are_tried() -> None:
    """Only the phrases whose required word a text holds are tried, so that a long attached document is read
    fast; no match may be lost by it. Every shipped keyword list (words and unless) against every labelled
    text and every listed phrase in ten spellings, each alone and forty at a time in one text (all of a list's
    in one text cost the whole list, hundreds of phrases, at each of hundreds of thousands of positions: minutes):
    the same spans as the whole list tried at every position."""
    import json as json_module

    from relay.moderation.folding import compile_phrases, fold_phrase, search
    from relay.moderation.policy import parse_policy

    data = REPO / "tests" / "data"
    texts = [json_module.loads(line)["text"] for name in ("safeguarding_labelled.jsonl",
                                                          "contact_cues_labelled.jsonl")
             for line in (data / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    shipped = [setting.params for name in ("youth-strict", "supervised", "adult-professional")
               for setting in parse_policy(REPO / "policies" / f"{name}.yaml").rules if setting.rule == "keywords"]
    # supervised ships youth-strict's lists: each list once
    lists = list({(tuple(params.words), tuple(params.unless)): params for params in shipped}.values())
    assert len(shipped) >= 20 and len(lists) >= 10
    compared = 0
    for params in lists:
        for words in (params.words, params.unless):
            if not words:
                continue
            whole = compile_phrases(fold_phrase(word) for word in words)
            assert whole is not None
            listed = keywords.Params(words=list(words))
            variants = [spelling for word in words for spelling in _spellings(word)]
            together = [" ... ".join(variants[start:start + 40]) for start in range(0, len(variants), 40)]
            for text in [*texts, *variants, *together]:
                found = keywords.check(inspect(text), listed)
                assert [(f.start, f.end) for f in found] == search(text, whole), (words[:3], text[:80])
                compared += 1
    assert compared > 5000


def test_keywords_see_through_invisible_characters() -> None:
    text = "I will ki\u00adll it, k\u200bill"
    assert matches(keyword_findings(text, "kill")) == ["ki\u00adll", "k\u200bill"]


def test_keywords_kind_is_the_label() -> None:
    assert [f.kind for f in keyword_findings("kill", "kill")] == ["keyword"]
    assert [f.kind for f in keyword_findings("kill", "kill", name="violence")] == ["violence"]


@pytest.mark.parametrize(
    "params",
    [{}, {"words": []}, {"words": ["  "]}, {"words": "kill"}, {"words": [3]}, {"words": ["kill"], "name": " "},
     {"words": ["kill"], "label": "violence"}],
)  # fmt: skip
def test_keywords_params_are_checked(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        keywords.Params.model_validate(params)


# ---------------------------------------------------------------------------------------------------- rate
def test_rate_flags_the_message_over_the_daily_limit() -> None:
    def at(last_24h: int, **params: Any) -> list[Finding]:
        return rate.check(
            inspect(stats=PairStats(messages_total=100, messages_last_24h=last_24h)), rate.Params(**params)
        )

    assert at(19) == []
    assert at(20) == [Finding("rate", "rate", "21 messages in 24 hours", -1, -1)]
    assert matches(at(35)) == ["36 messages in 24 hours"]
    assert at(4, max_per_day=5) == []
    assert matches(at(5, max_per_day=5)) == ["6 messages in 24 hours"]


@pytest.mark.parametrize("params", [{"max_per_day": 0}, {"max_per_day": "20"}, {"max_per_day": True}, {"per_day": 5}])
def test_rate_params_are_checked(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        rate.Params.model_validate(params)


# ------------------------------------------------------------------------------------------ first_messages
def test_first_messages_flags_only_the_first_count_messages() -> None:
    def at(total: int, **params: Any) -> list[Finding]:
        inspection = inspect(stats=PairStats(messages_total=total))
        return first_messages.check(inspection, first_messages.Params(**params))

    assert at(0) == [Finding("first_messages", "first_messages", "message 1 of the first 3", -1, -1)]
    assert matches(at(2)) == ["message 3 of the first 3"]
    assert at(3) == []
    assert at(40) == []
    assert at(0, count=0) == []
    assert matches(at(9, count=10)) == ["message 10 of the first 10"]


@pytest.mark.parametrize("params", [{"count": -1}, {"count": "3"}, {"count": 2.5}, {"first": 3}])
def test_first_messages_params_are_checked(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        first_messages.Params.model_validate(params)


# -------------------------------------------------------------------------------------------- contact_info
def test_contact_rule_feeds_the_inspection_and_keeps_the_asked_kinds() -> None:
    inspection = inspect(
        "Mail jane.doe@gmail.com or reply to blue-heron.k3x9pq@relay.example, or call +44 20 7946 0958",
        domain="relay.example",
        aliases=ALIASES,
        region="GB",
    )
    findings = contact_rule.check(inspection, contact_rule.Params())
    assert spans_hold(inspection, findings)
    assert [(f.kind, f.match) for f in findings] == [("email", "jane.doe@gmail.com"), ("phone", "+44 20 7946 0958")]
    phones = contact_rule.check(inspection, contact_rule.Params(kinds=["phone"]))
    assert matches(phones) == ["+44 20 7946 0958"]
    assert contact_rule.check(inspect("See you on Tuesday at five."), contact_rule.Params()) == []


@pytest.mark.parametrize("params", [{"kinds": ["phones"]}, {"kinds": "phone"}, {"region": "US"}])
def test_contact_rule_params_are_checked(params: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        contact_rule.Params.model_validate(params)
