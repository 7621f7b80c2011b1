"""Youth wording (program key `audience: youth`): the mentee of a youth program gets the simpler welcome
(their name here, what the partner never sees, that the program reads messages, what happens to contact
details, the safeguarding help text), held notice, partner-away notice and farewell, in their language;
the mentor, an adult, keeps the usual wording. An unknown audience is refused with its file and line. Under the
shipped youth-strict policy, a child of every translated language reads the policy's notices and the program's
help text in their language."""

from __future__ import annotations

import json
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


# A child of each translated language, under the SHIPPED youth-strict policy: an ordinary message (held: every
# message is read first), one with a phone number (rejected), a disclosure (urgent: the help text instead).
CHILDREN = {
    "es": ("Hola, hoy terminé el proyecto de ciencias.", "Mi número es 612 34 56 78, llámame", "me quiero matar"),
    "fr": ("Salut, j'ai fini mon exposé de sciences.", "Mon numéro c'est 06 12 34 56 78 appelle moi", "je veux mourir"),
    "ar": ("مرحبا، أنهيت مشروع العلوم اليوم.", "رقمي 0791234567 اتصل بي", "أريد أن أموت"),
    "ru": ("Привет, я закончила проект по физике.", "Мой номер +7 912 345 67 89, позвони", "хочу умереть"),
}


def flat(value: str) -> str:
    return " ".join(value.split())


async def test_children_under_the_shipped_youth_strict_policy_read_every_notice_in_their_language(
        layout: Layout, sink: Sink) -> None:
    """The held and rejected notices carry the policy's own text in the child's language (as shipped in
    policies/youth-strict.yaml), and the urgent confirmation the program's help text in the child's language:
    no sentence of the policy's English text or of the English help text is left in their mail."""
    import yaml

    from relay.config import load_settings
    from relay.service import Relay
    from tests.safeguarding_kit import HELP_TEXT, HELP_TEXTS, use_shipped_policy
    from tests.support import REPO, acli

    shipped = yaml.safe_load((REPO / "policies" / "youth-strict.yaml").read_text(encoding="utf-8"))["notices"]
    def given(kind: str, language: str) -> str | None:  # a plain string (the policy's English) gives none
        texts = shipped[kind]
        return flat(texts[language]) if isinstance(texts, dict) else (flat(texts) if language == "en" else None)

    english = [given("held", "en"), given("rejected", "en"), HELP_TEXT]
    use_shipped_policy(layout, "youth-strict", audience="youth")
    relay = Relay(load_settings(layout.config))
    await relay.start()
    try:
        for index, (language, (ordinary, phone, disclosure)) in enumerate(CHILDREN.items()):
            kid = f"kid{index}@mail.example.org"
            created = await acli(
                layout, "pair", "create", "--program", "stem", "--mentor-email", f"m{index}@uni.example.net",
                "--mentor-name", "Mentor Person", "--mentor-handle", f"Oak{index}", "--mentee-email", kid,
                "--mentee-name", "Kid Child", "--mentee-handle", f"Maple{index}", "--mentee-language", language,
                "--json")
            assert created.returncode == 0, created.stderr
            alias = json.loads(created.stdout)["mentor_alias"]
            wanted = [given("held", language), given("rejected", language), HELP_TEXTS[language]]
            for number, (body, expected) in enumerate(zip((ordinary, phone, disclosure), wanted, strict=True)):
                await eventually(lambda: nothing_queued(layout), timeout=20)
                seen = len(notices_in(sink))
                message = simple_message(kid, alias, f"m{number}", body)
                assert (await send(layout.smtp_port, message, kid, alias))[0] == 250
                got = await arrived(sink, seen, kid)
                read = text_of(got)
                assert got.message["Content-Language"] == language
                assert not [e for e in english if e and e in read], f"English in the {language} child's mail: {read}"
                assert expected and expected in read, f"{language} child, message {number}: {read}"
    finally:
        await relay.stop()
