"""The welcome message on pair creation: text and HTML, handles only, goals, expectations, safety
rules, help and away; a program's own template replaces ours; `welcome: false` sends none."""

from __future__ import annotations

from datetime import UTC, datetime

from relay.clock import FixedClock
from relay.store.events import list_events
from relay.store.outbound import list_outbound
from tests.nudging import enrol, running, wait_for_notices, words, write_program
from tests.support import DOMAIN, Layout, Sink

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
OAK = ("oak.mentor@uni.example.net", "Josef Brandt", "Oak", "Europe/Berlin")
MAPLE = ("maple.student@mail.example.org", "Jane Doe", "Maple", None)
REAL = ["oak.mentor", "uni.example.net", "maple.student", "mail.example.org", "Josef", "Brandt", "Jane", "Doe"]


async def test_both_members_are_welcomed_with_handles_only(layout: Layout, sink: Sink) -> None:
    write_program(layout, welcome=True, goals=["Explore engineering careers", "Write every week"],
                  end_date="2026-12-18")
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE)
        received = await wait_for_notices(sink, 2)
        by_rcpt = {r.rcpt_tos[0]: r.message for r in received}
        assert set(by_rcpt) == {OAK[0], MAPLE[0]}
        mentor_mail, mentee_mail = by_rcpt[OAK[0]], by_rcpt[MAPLE[0]]
        assert str(mentor_mail["Subject"]) == "Welcome to STEM mentoring: meet Maple, your mentee"
        assert str(mentee_mail["Subject"]) == "Welcome to STEM mentoring: meet Oak, your mentor"
        for message, partner in ((mentor_mail, pair.mentee), (mentee_mail, pair.mentor)):
            assert message["Reply-To"] == f"help@{DOMAIN}"  # a reply to the welcome reaches the coordinator
            assert message.get_content_type() == "multipart/alternative"
            text = words(message.get_body(preferencelist=("plain",)))
            html = message.get_body(preferencelist=("html",)).get_content()
            alias = partner.alias_address(DOMAIN)
            assert f"Write to {partner.handle} at {alias}" in text and f'href="mailto:{alias}"' in html
            assert "Explore engineering careers" in text and "<li>Write every week</li>" in html
            assert "Messages are monitored and archived by the program" in text
            assert "Do not share contact details" in text and "Do not share contact details" in html
            assert f"help@{DOMAIN}" in text and f"away@{DOMAIN}" in text and f"concern@{DOMAIN}" in text
            assert "The program runs until 18 December 2026" in text
            assert [word for word in REAL if word in text or word in html] == []
        assert "Answer Maple within 48 hours" in words(mentor_mail.get_body(preferencelist=("plain",)))
        assert "Your mentor is asked to answer within 48 hours" in words(mentee_mail.get_body(
            preferencelist=("plain",)))
        async with relay.engine.connect() as connection:  # (deliveries are recorded after the sink's reply)
            assert [e["kind"] for e in await list_events(connection, pair_id=pair.id) if e["kind"] != "delivered"] == [
                "pair_created", "welcome"]


async def test_a_program_template_replaces_ours(layout: Layout, sink: Sink) -> None:
    folder = layout.root / "our-templates"
    folder.mkdir()
    (folder / "welcome.txt.j2").write_text("Dear {{ handle }}, {{ partner_handle }} is looking forward to it.\n")
    write_program(layout, welcome=True, templates="our-templates")
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        await enrol(relay, clock, OAK, MAPLE)
        received = await wait_for_notices(sink, 2)
        texts = sorted(words(r.message.get_body(preferencelist=("plain",))) for r in received)
        assert texts == ["Dear Maple, Oak is looking forward to it.", "Dear Oak, Maple is looking forward to it."]
        assert all("Safety rules" in r.message.get_body(preferencelist=("html",)).get_content() for r in received)


async def test_no_welcome_when_the_program_says_so(layout: Layout, sink: Sink) -> None:
    clock = FixedClock(T0)  # tests/support.Layout writes `welcome: false`
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE)
        async with relay.engine.connect() as connection:
            assert await list_outbound(connection) == []
            assert [e["kind"] for e in await list_events(connection, pair_id=pair.id)] == ["pair_created"]


async def test_a_spanish_program_welcomes_in_spanish(layout: Layout, sink: Sink) -> None:
    write_program(layout, welcome=True, language="es", end_date="2026-12-18")
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        await enrol(relay, clock, OAK, MAPLE)
        received = await wait_for_notices(sink, 2)
        mentee_mail = next(r.message for r in received if r.rcpt_tos == [MAPLE[0]])
        assert str(mentee_mail["Subject"]) == "Bienvenido a STEM mentoring: te presentamos a Oak, tu mentor"
        assert mentee_mail["Content-Language"] == "es"
        text = words(mentee_mail.get_body(preferencelist=("plain",)))
        assert "Hola, Maple:" in text and "El programa dura hasta el 18 de diciembre de 2026" in text
        assert "Tu mentor debe responder en 48 horas como máximo" in text
        assert "Welcome" not in text and "Safety rules" not in text
        html = mentee_mail.get_body(preferencelist=("html",)).get_content()
        assert '<html lang="es" dir="ltr">' in html and "Reglas de seguridad:" in html


async def test_an_arabic_welcome_reads_right_to_left(layout: Layout, sink: Sink) -> None:
    write_program(layout, welcome=True, language="ar")
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE)
        received = await wait_for_notices(sink, 2)
        mentee_mail = next(r.message for r in received if r.rcpt_tos == [MAPLE[0]])
        html = mentee_mail.get_body(preferencelist=("html",)).get_content()
        assert '<html lang="ar" dir="rtl">' in html and 'dir="rtl"' in html.split("<body", 1)[1][:40]
        assert "قواعد الأمان:" in html and f'href="mailto:{pair.mentor.alias_address(DOMAIN)}"' in html
        assert str(mentee_mail["Subject"]) == "أهلًا بك في STEM mentoring: تعرّف على Oak، مرشدك"


def test_a_language_without_a_catalog_is_refused_with_its_line(layout: Layout) -> None:
    from relay.config import load_settings
    from relay.yamlsource import ConfigError

    write_program(layout, language="de", staff_language="fr")
    try:
        load_settings(layout.config)
    except ConfigError as error:
        assert any("stem.yaml" in m and "language: no notices in language 'de'" in m for m in error.messages)
    else:
        raise AssertionError("language de was accepted")
