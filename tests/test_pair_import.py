"""`pair import`: a whole CSV checked before anything is written, FILE:LINE for every bad row, pairs
that exist skipped, a dry run that writes nothing, welcomes queued, and a 1,000-row file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import func, select

from relay.store.schema import members, outbound, pairs
from tests.nudging import write_program
from tests.support import Layout, cli, create_pair, free_port, rows_now

HEADER = "mentor_email,mentor_name,mentor_handle,mentee_email,mentee_name,mentee_handle"


@pytest.fixture
def offline_layout(tmp_path: Path) -> Layout:
    layout = Layout(root=tmp_path / "relay", smtp_port=free_port(), sink_port=None)
    layout.write()
    return layout


def row(index: int, **changes: str) -> dict[str, str]:
    values = {"mentor_email": f"mentor{index}@uni.example.net", "mentor_name": f"Robert Smithson{index}",
              "mentor_handle": f"Oak{index}", "mentee_email": f"mentee{index}@school.example.org",
              "mentee_name": f"Alice Walker{index}", "mentee_handle": f"Maple{index}"}
    values.update(changes)
    return values


def write_csv(path: Path, records: list[dict[str, str]], columns: list[str] | None = None) -> Path:
    columns = columns or list(records[0])
    lines = [",".join(columns)] + [",".join(r.get(c, "") for c in columns) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def count_pairs(layout: Layout) -> int:
    return int(rows_now(layout, select(func.count()).select_from(pairs))[0][0])


def test_good_file_creates_every_pair_with_welcomes(offline_layout: Layout, tmp_path: Path) -> None:
    write_program(offline_layout, welcome=True)
    columns = [*HEADER.split(","), "mentee_language", "mentor_timezone", "mentor_nickname", "end_date"]
    file = write_csv(tmp_path / "cohort.csv", [
        row(1, mentee_language="es", mentor_timezone="Europe/Madrid", mentor_nickname="Bob;Bobby",
            end_date="2099-06-30"),
        row(2)], columns)
    result = cli(offline_layout, "pair", "import", "--program", "stem", str(file), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["created"] == 2 and data["skipped"] == 0
    assert [p["line"] for p in data["pairs"]] == [2, 3]
    first = data["pairs"][0]
    assert first["mentor_alias"].startswith("oak1.") and first["mentee_alias"].startswith("maple1.")
    shown = json.loads(cli(offline_layout, "pair", "show", str(data["pairs"][0]["id"]), "--json").stdout)
    assert shown["mentor"]["email"] == "mentor1@uni.example.net" and shown["end_date"] == "2099-06-30"
    people = rows_now(offline_layout, select(members.c.handle, members.c.language, members.c.timezone,
                                             members.c.nicknames).order_by(members.c.id))
    assert people[0] == ("Oak1", None, "Europe/Madrid", json.dumps(["Bob", "Bobby"]))
    assert people[1][:2] == ("Maple1", "es")
    welcomes = rows_now(offline_layout, select(outbound.c.rcpt).where(outbound.c.kind == "notice"))
    assert sorted(r.rcpt for r in welcomes) == sorted(
        [f"mentor{i}@uni.example.net" for i in (1, 2)] + [f"mentee{i}@school.example.org" for i in (1, 2)])
    # the import chains its rows in one statement at the end: the record still verifies, entry by entry
    verified = cli(offline_layout, "archive", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_every_bad_row_is_reported_and_nothing_written(offline_layout: Layout, tmp_path: Path) -> None:
    create_pair(offline_layout, {"email": "taken@uni.example.net", "name": "Tom Taken", "handle": "Cedar"},
                {"email": "kid@school.example.org", "name": "Kim Kid", "handle": "Fern"})
    columns = [*HEADER.split(","), "mentor_timezone", "mentee_language", "policy", "end_date"]
    file = tmp_path / "cohort.csv"
    good = row(1)
    text = [",".join(columns),
            ",".join(good.get(c, "") for c in columns),  # line 2: good
            "not-an-address,Robert Smithson2,Oak2,mentee2@school.example.org,Alice Walker2,Maple2,,,,",  # 3
            'mentor3@uni.example.net,"Robert\nSmithson3",Oak3,mentee3@school.example.org,Alice Walker3,Maple3,,,,',
            # ^ lines 4-5: a quoted name with a line break (collapsed to a space: good)
            "mentor4@uni.example.net,Robert Smithson4,Oak1,mentee4@school.example.org,Alice Walker4,Maple4,,,,",  # 6
            "mentor5@uni.example.net,Robert Smithson5,Robert,mentee5@school.example.org,Alice Walker5,M5a,,,,",  # 7
            "mentor6@uni.example.net,Rob Smithson6,Oak6,mentee6@school.example.org,Alice Walker6,Maple6,Mars/Base,,,",
            "mentor7@uni.example.net,Robert Smithson7,Oak7,mentee7@school.example.org,Alice Walker7,Maple7,,de,,",  # 9
            "mentor8@uni.example.net,Robert Smithson8,Oak8,mentee8@school.example.org,Alice Walker8,Maple8,,,nope,",
            "mentor9@uni.example.net,Rob Smithson9,Oak9,mentee9@school.example.org,Alice Walker9,Maple9,,,,2001-01-01",
            "mentor10@uni.example.net,Robert Smithson10,Cedar,mentee10@school.example.org,Alice W,Maple10,,,,",  # 12
            "mentor11@uni.example.net,,Oak11,mentee11@school.example.org,Alice Walker11,Maple11,,,,",  # 13
            "mentor12@uni.example.net,Robert Smithson12,Oak12"]  # 14
    file.write_text("\n".join(text) + "\n", encoding="utf-8")
    result = cli(offline_layout, "pair", "import", "--program", "stem", str(file))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"{file}:")]
    assert [int(line.split(":")[1]) for line in errors] == [3, 6, 7, 8, 9, 10, 11, 12, 13, 14], result.stderr
    by_line = {int(line.split(":")[1]): line for line in errors}
    assert "not a usable email address" in by_line[3]
    assert "used by someone else on line 2" in by_line[6]
    assert "must not contain their real name" in by_line[7]
    assert "unknown time zone 'Mars/Base'" in by_line[8]
    assert "no notices in language 'de' (German" in by_line[9]
    assert "no policy named 'nope'" in by_line[10]
    assert "in the past" in by_line[11]
    assert "'Cedar' is already used in program 'stem'" in by_line[12]
    assert "empty mentor_name" in by_line[13]
    assert "3 fields where the header has 10" in by_line[14]
    assert "nothing was written" in result.stderr and "Traceback" not in result.stderr
    assert count_pairs(offline_layout) == 1


def test_an_empty_end_date_is_the_programs_and_refused_once_it_has_passed(offline_layout: Layout,
                                                                         tmp_path: Path) -> None:
    """A row without an end date ends with the program: after the program's end date such a pair would be
    welcomed, then ended by the next sweep with a farewell. It is refused, as a past date of its own is."""
    write_program(offline_layout, end_date="2001-06-30", welcome=True)
    columns = [*HEADER.split(","), "end_date"]
    file = write_csv(tmp_path / "late.csv", [row(1, end_date=""), row(2, end_date="2099-06-30"),
                                              row(3, end_date="2001-06-30")], columns)
    result = cli(offline_layout, "pair", "import", "--program", "stem", str(file))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith(f"{file}:")]
    assert [int(line.split(":")[1]) for line in errors] == [2, 4], result.stderr
    assert "the program's end date 2001-06-30 applies, and it is in the past" in errors[0]
    assert "end date 2001-06-30 is in the past" in errors[1]
    assert "nothing was written" in result.stderr and "Traceback" not in result.stderr
    assert count_pairs(offline_layout) == 0
    fixed = write_csv(tmp_path / "fixed.csv", [row(1, end_date="2099-06-30")], columns)
    assert cli(offline_layout, "pair", "import", "--program", "stem", str(fixed)).returncode == 0
    assert count_pairs(offline_layout) == 1


def test_rerun_skips_existing_pairs_and_dry_run_writes_nothing(offline_layout: Layout, tmp_path: Path) -> None:
    first = write_csv(tmp_path / "first.csv", [row(1), row(2)])
    assert cli(offline_layout, "pair", "import", "--program", "stem", str(first)).returncode == 0
    both = write_csv(tmp_path / "both.csv", [row(1), row(2), row(3)])
    dry = cli(offline_layout, "pair", "import", "--program", "stem", str(both), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert json.loads(dry.stdout)["created"] == 1 and json.loads(dry.stdout)["skipped"] == 2
    assert count_pairs(offline_layout) == 2
    again = cli(offline_layout, "pair", "import", "--program", "stem", str(both))
    assert again.returncode == 0, again.stderr
    assert f"{both}:2: skipped: pair 1" in again.stdout and f"{both}:3: skipped: pair 2" in again.stdout
    assert "created 1 pairs, skipped 2" in again.stdout
    assert count_pairs(offline_layout) == 3
    single = cli(offline_layout, "pair", "create", "--program", "stem", "--mentor-email", "m9@uni.example.net",
                 "--mentor-name", "Nine Mentor", "--mentor-handle", "Elm9", "--mentee-email", "e9@school.example.org",
                 "--mentee-name", "Nine Mentee", "--mentee-handle", "Ash9")
    assert single.returncode == 0, single.stderr  # chained after the imports' entries
    verified = cli(offline_layout, "archive", "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_file_level_problems(offline_layout: Layout, tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    missing.write_text("mentor_email,mentor_name,mentee_email,mentee_name,mentee_handle,colour\n", encoding="utf-8")
    result = cli(offline_layout, "pair", "import", "--program", "stem", str(missing))
    assert result.returncode == 1
    assert f"{missing}:1: missing column mentor_handle" in result.stderr
    assert f"{missing}:1: unknown column colour" in result.stderr
    latin = tmp_path / "latin.csv"
    latin.write_bytes((HEADER + "\n" + ",".join(row(1, mentor_name="José Müller").values()) + "\n")
                      .encode("windows-1252"))
    result = cli(offline_layout, "pair", "import", "--program", "stem", str(latin))
    assert result.returncode == 1 and f"{latin}:2: the file is not UTF-8" in result.stderr
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes((HEADER + "\n").encode("utf-16"))
    assert "is UTF-16" in cli(offline_layout, "pair", "import", "--program", "stem", str(utf16)).stderr
    quote = tmp_path / "quote.csv"
    quote.write_text(HEADER + '\nm@uni.example.net,"Robert Smithson,Oak,x@school.example.org,Al W,Maple\n',
                     encoding="utf-8")
    result = cli(offline_layout, "pair", "import", "--program", "stem", str(quote))
    assert result.returncode == 1 and "malformed CSV" in result.stderr and "Traceback" not in result.stderr
    bom = write_csv(tmp_path / "bom.csv", [row(1, mentor_name="José Müller", mentor_handle="Oak")])
    bom.write_bytes(b"\xef\xbb\xbf" + bom.read_bytes())
    result = cli(offline_layout, "pair", "import", "--program", "stem", str(bom), "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(cli(offline_layout, "pair", "show", "1", "--json").stdout)
    assert shown["mentor"]["name"] == "José Müller"
    assert count_pairs(offline_layout) == 1


def test_thousand_rows(offline_layout: Layout, tmp_path: Path) -> None:
    file = write_csv(tmp_path / "big.csv", [row(i) for i in range(1000)])
    result = cli(offline_layout, "pair", "import", "--program", "stem", str(file), "--json", timeout=300)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["created"] == 1000 and len({p["mentor_alias"] for p in data["pairs"]}) == 1000
    assert count_pairs(offline_layout) == 1000


def test_standard_input(offline_layout: Layout, tmp_path: Path) -> None:
    """`-` reads the file from standard input (under Docker Compose the container cannot see the host's files:
    `docker compose exec -T relay mentor-relay pair import --program P - < cohort.csv`); its problems are named
    `<stdin>:LINE`. /dev/stdin and other pipes are read too. (All three used to be refused: "no such file".)"""
    good = write_csv(tmp_path / "good.csv", [row(1), row(2)]).read_text(encoding="utf-8")
    result = cli(offline_layout, "pair", "import", "--program", "stem", "-", "--json", stdin=good)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["created"] == 2 and [p["line"] for p in data["pairs"]] == [2, 3]
    again = cli(offline_layout, "pair", "import", "--program", "stem", "-", stdin=good)
    assert again.returncode == 0 and "<stdin>:2: skipped: pair 1" in again.stdout, again.stdout + again.stderr
    bad = write_csv(tmp_path / "bad.csv", [row(3), row(4, mentee_email="not an address")]).read_text(encoding="utf-8")
    refused = cli(offline_layout, "pair", "import", "--program", "stem", "-", stdin=bad)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith("<stdin>:3: 'not an address' is not a usable email address"), refused.stderr
    assert "error: 1 problem in <stdin>; nothing was written" in refused.stderr
    piped = cli(offline_layout, "pair", "import", "--program", "stem", "/dev/stdin", stdin=bad)
    assert piped.returncode == 1 and "/dev/stdin:3: 'not an address'" in piped.stderr, piped.stderr
    assert count_pairs(offline_layout) == 2
    folder = cli(offline_layout, "pair", "import", "--program", "stem", str(tmp_path))
    assert folder.returncode == 1 and f"error: {tmp_path}: is a folder" in folder.stderr, folder.stderr
