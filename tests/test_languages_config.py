"""Language tags as admins write them: BCP 47 regional forms fall back to the language we write in
(es-MX -> es), anything else is refused with a clear message — `file:line: message` in a program file,
exit 2 with the reason on the command line (a bad option value), `FILE:LINE` in a pair import."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import select

from relay.languages import LanguageError, check
from relay.notices.rendering import notice
from relay.store.schema import members
from tests.nudging import write_program
from tests.support import MENTEE, MENTOR, Layout, cli, free_port, rows_now
from tests.test_translations import contexts


@pytest.fixture
def offline(tmp_path: Path) -> Layout:
    layout = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=None)
    layout.write()
    return layout


def test_regional_tags_fall_back_to_the_language_and_others_are_named() -> None:
    tags = ("es-MX", "es_419", "fr-CA", "ar-EG", "ru-RU", "EN", "fr-Latn-CA")
    assert [check(tag) for tag in tags] == ["es", "es", "fr", "ar", "ru", "en", "fr"]
    with pytest.raises(LanguageError, match=r"'Spanish' is not a language tag \(BCP 47"):
        check("Spanish")
    with pytest.raises(LanguageError, match=r"unknown language 'xx' \(available: ar, en, es, fr, ru\)"):
        check("xx")
    with pytest.raises(LanguageError, match=r"no notices in language 'pt-BR' \(Portuguese; .* pt_BR.po or pt.po"):
        check("pt-BR")
    # A notice asked for in a regional form is written in the language's catalog, its lang the catalog's.
    context = contexts("welcome")[1]
    mexican = notice("welcome", "es-MX", **context)
    assert mexican == notice("welcome", "es", **context) and "¡Bienvenido a STEMx!" in mexican.text


def test_a_program_file_with_a_regional_language_is_accepted_and_a_bad_one_names_its_line(offline: Layout) -> None:
    write_program(offline, language="es-MX", staff_language="fr_CA")
    checked = cli(offline, "check-config")
    assert checked.returncode == 0, checked.stderr
    listed = json.loads(cli(offline, "program", "list", "--json").stdout)
    assert [(p["id"], p["language"], p["staff_language"]) for p in listed] == [("stem", "es", "fr")]
    program_file = offline.root / "programs" / "stem.yaml"
    for value, reason in (("Spanish", "'Spanish' is not a language tag"),
                          ("qq", "unknown language 'qq'"),
                          ("de", "no notices in language 'de' (German")):
        write_program(offline, language=value, staff_language="en")
        line = next(n for n, text in enumerate(program_file.read_text().splitlines(), 1)
                    if text.startswith("language:"))
        result = cli(offline, "check-config")
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert f"{program_file}:{line}: language: {reason}" in result.stderr, result.stderr


def test_pair_create_and_group_add_refuse_a_bad_language_with_exit_2(offline: Layout, tmp_path: Path) -> None:
    def create(*extra: str) -> tuple[int, str]:
        result = cli(offline, "pair", "create", "--program", "stem",
                     "--mentor-email", MENTOR["email"], "--mentor-name", MENTOR["name"],
                     "--mentor-handle", MENTOR["handle"], "--mentee-email", MENTEE["email"],
                     "--mentee-name", MENTEE["name"], "--mentee-handle", MENTEE["handle"], *extra, "--json")
        return result.returncode, result.stdout + result.stderr

    code, text = create("--mentee-language", "Spanish")
    assert code == 2 and "argument --mentee-language: 'Spanish' is not a language tag" in text
    code, text = create("--mentee-language", "de")
    assert code == 2 and "error: the mentee's language: no notices in language 'de' (German" in text
    assert "Traceback" not in text
    assert rows_now(offline, select(members.c.id)) == []  # nothing written
    code, text = create("--mentee-language", "es-MX", "--language", "fr-CA")
    assert code == 0, text
    stored = dict(rows_now(offline, select(members.c.role, members.c.language)))
    assert stored == {"mentor": "fr", "mentee": "es"}

    group = json.loads(cli(offline, "group", "create", "--program", "stem", "--name", "Robotics",
                           "--json").stdout)["id"]
    base = ["group", "add", str(group), "--role", "mentee", "--email", "y@school.example.com", "--name",
            "Yara Lee", "--handle", "Fern"]
    refused = cli(offline, *base, "--language", "ru-XX-1")
    assert refused.returncode == 2 and "not a language tag" in refused.stderr
    refused = cli(offline, *base, "--language", "zh-Hant")
    assert refused.returncode == 2 and "no notices in language 'zh-Hant' (Chinese" in refused.stderr
    added = cli(offline, *base, "--language", "ar-MA", "--json")
    assert added.returncode == 0, added.stderr
    member = json.loads(added.stdout)["id"]
    assert rows_now(offline, select(members.c.language).where(members.c.id == member)) == [("ar",)]

    # pair import keeps its contract: FILE:LINE for each bad row, exit 1, nothing written.
    csv = tmp_path / "cohort.csv"
    csv.write_text("mentor_email,mentor_name,mentor_handle,mentee_email,mentee_name,mentee_handle,mentee_language\n"
                   "a@uni.example.net,Anna Berg,Birch,b@school.example.org,Ben Cole,Reed,es-AR\n"
                   "c@uni.example.net,Carl Dunn,Ash,d@school.example.org,Dana Eve,Moss,Russian\n", encoding="utf-8")
    result = cli(offline, "pair", "import", "--program", "stem", str(csv))
    assert result.returncode == 1
    assert f"{csv}:3: the mentee's language: 'Russian' is not a language tag" in result.stderr, result.stderr
    assert f"{csv}:2:" not in result.stderr


def line_of(path: Path, start: str) -> int:
    return next(n for n, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                if text.lstrip().startswith(start))


def test_a_help_text_per_language_reaches_each_reader_and_the_default_the_others(offline: Layout) -> None:
    """safeguarding.help_text as a mapping: each reader gets their language's text (es-MX: es), a reader of a
    language it does not list gets the default; one plain text (older files) is the text for everybody."""
    from relay.config import load_settings
    from relay.notices.programs import safeguarding_help

    help_texts = {"default": "Call 999 if you are in danger.", "es": "Llama al 999 si estás en peligro.",
                  "fr": "Appelle le 999 si tu es en danger."}
    write_program(offline, safeguarding={"lead": "lead@school.example", "help_text": help_texts})
    checked = cli(offline, "check-config")
    assert checked.returncode == 0, checked.stderr
    settings = load_settings(offline.config)
    program = settings.programs["stem"]
    assert safeguarding_help(settings, program, "es-MX") == "Llama al 999 si estás en peligro."
    assert safeguarding_help(settings, program, "fr") == "Appelle le 999 si tu es en danger."
    assert safeguarding_help(settings, program, "ar") == "Call 999 if you are in danger."
    write_program(offline, safeguarding={"lead": "lead@school.example", "help_text": "Childline: 0800 1111."})
    settings = load_settings(offline.config)
    assert safeguarding_help(settings, settings.programs["stem"], "ru") == "Childline: 0800 1111."


def test_a_bad_help_text_or_policy_notice_text_names_its_file_and_line(offline: Layout) -> None:
    """check-config refuses a help text mapping without a default, with a key that is not a language or a blank
    text, and a policy notice text with such a key or of the wrong shape; each at its line, no traceback."""
    program_file = offline.root / "programs" / "stem.yaml"
    for help_text, at, reason in (
            ({"es": "Llama al 999."}, "help_text:", "needs a `default:` text"),
            ({"default": "Call 999.", "Spanish": "Llama al 999."}, "Spanish:", "'Spanish' is not a language tag"),
            ({"default": "Call 999.", "fr": "  "}, "fr:", "the text cannot be blank")):
        write_program(offline, safeguarding={"lead": "lead@school.example", "help_text": help_text})
        result = cli(offline, "check-config")
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert f"{program_file}:{line_of(program_file, at)}: safeguarding.help_text" in result.stderr, result.stderr
        assert reason in result.stderr, result.stderr
    write_program(offline, safeguarding={"lead": "lead@school.example", "help_text": "Call 999."})
    policy_file = offline.root / "policies" / "adult-professional.yaml"
    policy = policy_file.read_text(encoding="utf-8")
    for notices, at, reason in (
            ("notices:\n  held:\n    en: Held.\n    espanol: Retenido.\n", "espanol:",
             "'espanol' is not a language tag"),
            ("notices:\n  rejected: [Not sent.]\n", "rejected:", "expected a text, or a mapping of languages"),
            ("notices:\n  held:\n    en: Held.\n    EN: Held again.\n", "held:",
             "'en' and 'EN' name the same language")):
        policy_file.write_text(policy + notices, encoding="utf-8")
        result = cli(offline, "check-config")
        assert result.returncode != 0 and "Traceback" not in result.stderr
        assert f"{policy_file}:{line_of(policy_file, at)}: notices." in result.stderr, result.stderr
        assert reason in result.stderr, result.stderr
    policy_file.write_text(policy + "notices:\n  held: Held, as older files write it.\n  rejected: null\n",
                           encoding="utf-8")
    assert cli(offline, "check-config").returncode == 0
