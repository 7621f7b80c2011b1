"""Youth wording (program key `audience: youth`): the mentee of a youth program gets the simpler welcome
(their name here, what the partner never sees, that the program reads messages, what happens to contact
details, the safeguarding help text), held notice, partner-away notice and farewell, in their language;
the mentor, an adult, keeps the usual wording. An unknown audience is refused with its file and line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from relay.clock import FixedClock
from relay.nudges import sweep
from tests.nudging import enrol, notices_in, running, write_program
from tests.support import DOMAIN, Layout, Received, Sink, cli, eventually, nothing_queued, send, simple_message

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
HERON = ("heron.mentor@uni.example.net", "Josef Brandt", "Heron", "Europe/Madrid", (), "es")
OTTER = ("otter.student@mail.example.org", "Jane Doe", "Otter", "Europe/Madrid", (), "es")
HELP = "Si necesitas hablar con alguien, llama gratis al 116 111."


async def arrived(sink: Sink, seen: int, to: str) -> Received:
    found: Received = await eventually(
        lambda: next((r for r in notices_in(sink)[seen:] if r.rcpt_tos == [to]), None), timeout=20)
    return found


def text_of(received: Received) -> str:
    body = received.message.get_body(preferencelist=("plain",))
    assert body is not None
    return " ".join(body.get_content().split())


async def test_a_youth_programs_mentee_gets_the_simpler_notices(layout: Layout, sink: Sink) -> None:
    (layout.root / "policies" / "hold-contacts.yaml").write_text(
        "name: hold-contacts\ndefault_action: deliver\nrules:\n  contact_info:\n    action: hold\n")
    write_program(layout, welcome=True, audience="youth", policy="hold-contacts", end_date="2026-06-20",
                  safeguarding={"lead": "lead@school.example", "help_text": HELP})
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, HERON, OTTER)
        welcome = text_of(await arrived(sink, 0, OTTER[0]))
        assert welcome.startswith("Hola, Otter: ¡Bienvenido a STEM mentoring! Tu mentor es Heron.")
        assert "Aquí te llamas Otter. Heron nunca ve tu nombre real ni tu correo." in welcome
        assert "Personas del programa pueden leer tus mensajes para cuidarte." in welcome
        assert "el programa los quita o para el mensaje" in welcome and HELP in welcome
        html = (await arrived(sink, 0, OTTER[0])).message.get_body(preferencelist=("html",)).get_content()
        assert "Aquí te llamas Otter." in html
        mentor_welcome = text_of(await arrived(sink, 0, HERON[0]))
        assert "Aquí te llamas" not in mentor_welcome and HELP not in mentor_welcome  # adults: the usual one

        await eventually(lambda: nothing_queued(layout), timeout=20)  # no earlier notice arrives after `seen`
        seen = len(notices_in(sink))
        to = pair.mentor.alias_address(DOMAIN)
        message = simple_message(OTTER[0], to, "Mi móvil", "Llámame al 612 34 56 78 esta tarde.")
        assert (await send(relay.settings.relay.smtp.port, message, OTTER[0], to))[0] == 250
        held = await arrived(sink, seen, OTTER[0])
        assert text_of(held).startswith("¡Gracias por tu mensaje! Una persona del programa lo revisa")

        await eventually(lambda: nothing_queued(layout), timeout=20)  # no earlier notice arrives after `seen`
        seen = len(notices_in(sink))
        away = simple_message(HERON[0], f"away@{DOMAIN}", "until 2026-06-05", "Viajo unos días.")
        assert (await send(relay.settings.relay.smtp.port, away, HERON[0], f"away@{DOMAIN}"))[0] == 250
        told = await arrived(sink, seen, OTTER[0])
        assert str(told.message["Subject"]) == "Heron no está hasta el 5 de junio de 2026"
        assert "Puedes seguir escribiendo. Tus mensajes le esperan." in text_of(told)

        await eventually(lambda: nothing_queued(layout), timeout=20)  # no earlier notice arrives after `seen`
        seen = len(notices_in(sink))
        clock.advance(timedelta(days=20))
        await sweep.run(relay.settings, relay.engine, clock)
        farewell = text_of(await arrived(sink, seen, OTTER[0]))
        assert farewell.startswith("Hola, Otter: Tu tiempo con Heron en STEM mentoring ha terminado.")
        mentor_farewell = text_of(await arrived(sink, seen, HERON[0]))
        assert "Tu conversación con Otter en STEM mentoring ha llegado a su fin." in mentor_farewell


def test_an_unknown_audience_is_refused_with_its_line(layout: Layout) -> None:
    write_program(layout, audience="kids")
    program_file = layout.root / "programs" / "stem.yaml"
    line = next(n for n, text in enumerate(program_file.read_text().splitlines(), 1) if text.startswith("audience:"))
    result = cli(layout, "check-config")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{program_file}:{line}: audience" in result.stderr and "'adult' or 'youth'" in result.stderr, result.stderr
