"""Every reply a participant gets from the program's addresses is in their own language, end to end
through real SMTP: a Spanish-speaking mentee and a French-speaking mentor in an English program write to
help@, concern@, away@, digest@, have mail held and rejected, see a message bounce and write after the
end; each notice they receive is the translated one, with Content-Language and a UTF-8 charset. away@
reads a date written the sender's way ("hasta el 20 de diciembre", "до 20 декабря") and "back" in their
language."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from typing import Any

import pytest

from relay.clock import FixedClock
from relay.holdqueue import actions as review
from relay.inbound import digest_choice
from relay.inbound.program.away import AwayError, Request, parse_subject
from relay.inbound.program.exchange import parse_answer
from relay.nudges import sweep
from relay.service import Relay
from relay.store.held import list_held
from tests.nudging import enrol, notices_in, running, write_program
from tests.support import DOMAIN, Layout, Received, Sink, eventually, nothing_queued, send, simple_message
from tests.test_bounces import report

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
OAK = ("oak.mentor@uni.example.net", "Josef Brandt", "Oak", "Europe/Paris", (), "fr")
MAPLE = ("maple.student@mail.example.org", "Jane Doe", "Maple", "America/Mexico_City", (), "es-MX")
# Sentences of the English notices that must not appear in a translated one.
ENGLISH = ("Hello ", "We could not", "Your message", "has been", "the coordinator", "Thank you", "please")


@pytest.mark.parametrize(("subject", "language", "until"), [
    ("Hasta el 20 de diciembre", "es", date(2026, 12, 20)),
    ("hasta el 20/12/2026", "es", date(2026, 12, 20)),
    ("Jusqu'au 20 décembre 2026", "fr", date(2026, 12, 20)),
    ("absent jusqu'au 20.12.2026", "fr", date(2026, 12, 20)),
    ("До 20 декабря", "ru", date(2026, 12, 20)),
    ("حتى ٢٠ ديسمبر ٢٠٢٦", "ar", date(2026, 12, 20)),
    ("until 3 January", "en", date(2027, 1, 3)),  # no year: the next 3 January
    ("hasta 2026-12-20", "es", date(2026, 12, 20)),
    ("Re: ya volví", "es", None), ("De retour !", "fr", None), ("Вернулась", "ru", None), ("عدت", "ar", None),
])
def test_away_subjects_in_the_senders_language(subject: str, language: str, until: date | None) -> None:
    assert parse_subject(subject, language, date(2026, 6, 1)) == Request(until)


def test_away_subjects_that_cannot_be_read() -> None:
    with pytest.raises(AwayError) as error:
        parse_subject("hasta el 31/02/2026", "es", date(2026, 6, 1))
    assert (error.value.problem, error.value.day) == ("not_a_date", "31/02/2026")
    with pytest.raises(AwayError):  # month first or day first? English only takes 2026-12-20 or 20 December
        parse_subject("until 12/11/2026", "en", date(2026, 6, 1))


def test_digest_and_share_words_in_the_shipped_languages() -> None:
    assert [digest_choice.parse_subject(word) for word in ("Diario", "Re: semanal", "cada", "quotidien",
                                                           "hebdomadaire", "еженедельно", "каждое", "يومي",
                                                           "weekly", "hola")] == [
        "daily", "weekly", "each", "daily", "weekly", "weekly", "each", "daily", "weekly", None]
    assert [parse_answer(word) for word in ("Sí", "no", "Oui", "Non", "Да!", "нет", "نعم", "لا", "yes",
                                            "nonsense")] == [
        "yes", "no", "yes", "no", "yes", "no", "yes", "no", "yes", None]


async def mail(relay: Relay, sender: str, to: str, subject: str, body: str = "Hola") -> None:
    code, text = await send(relay.settings.relay.smtp.port, simple_message(sender, to, subject, body), sender, to)
    assert code == 250, text


async def next_notice(sink: Sink, seen: int, to: str) -> Received:
    """The first notice to `to` after the first `seen` notices."""
    def found() -> Received | None:
        return next((r for r in notices_in(sink)[seen:] if r.rcpt_tos == [to]), None)
    result: Received = await eventually(found, timeout=20)
    return result


def check_language(message: EmailMessage, language: str) -> str:
    """The text of a notice, after checking that it says it is in `language`, in UTF-8, with no English left."""
    assert message["Content-Language"] == language, (message["Subject"], message["Content-Language"])
    body = message.get_body(preferencelist=("plain",))
    assert body is not None and body.get_content_charset() == "utf-8"
    text: str = body.get_content()
    for phrase in ENGLISH:
        assert phrase not in text and phrase not in str(message["Subject"]), (phrase, text)
    return " ".join(text.split())


async def test_each_reply_is_in_the_participants_language(layout: Layout, sink: Sink) -> None:
    (layout.root / "policies" / "hold-contacts.yaml").write_text(
        "name: hold-contacts\ndefault_action: deliver\nrules:\n  contact_info:\n    action: hold\n")
    write_program(layout, policy="hold-contacts", language="en")
    clock = FixedClock(T0)
    async with running(layout, clock) as relay:
        pair = await enrol(relay, clock, OAK, MAPLE, end_date="2026-06-10")
        assert (pair.mentor.language, pair.mentee.language) == ("fr", "es")
        got: dict[str, tuple[str, str]] = {}

        async def step(name: str, to: str, language: str, action: Any) -> None:
            # the earlier steps' notices all out first: one to the same person arriving late (Oak's farewell,
            # sent with Maple's) would otherwise be taken for this step's
            await eventually(lambda: nothing_queued(layout), timeout=20)
            seen = len(notices_in(sink))
            await action
            message = (await next_notice(sink, seen, to)).message
            got[name] = (str(message["Subject"]), check_language(message, language))

        # help@ and away@ (a request, one it cannot read, one in the past), digest@ without a group
        await step("help", MAPLE[0], "es", mail(relay, MAPLE[0], f"help@{DOMAIN}", "Una pregunta"))
        await eventually(lambda: nothing_queued(layout), timeout=20)  # no earlier notice arrives after `seen`
        seen = len(notices_in(sink))
        await step("away", MAPLE[0], "es", mail(relay, MAPLE[0], f"away@{DOMAIN}", "Hasta el 10 de junio"))
        told = (await next_notice(sink, seen, OAK[0])).message
        got["away_partner"] = (str(told["Subject"]), check_language(told, "fr"))
        await step("away_unclear", MAPLE[0], "es", mail(relay, MAPLE[0], f"away@{DOMAIN}", "pronto"))
        await step("away_passed", MAPLE[0], "es", mail(relay, MAPLE[0], f"away@{DOMAIN}", "until 2026-05-01"))
        await step("digest", MAPLE[0], "es", mail(relay, MAPLE[0], f"digest@{DOMAIN}", "daily"))

        # held, then rejected by a moderator: the sender is told each time
        mentee_alias = pair.mentee.alias_address(DOMAIN)
        await step("held", OAK[0], "fr", mail(relay, OAK[0], mentee_alias, "Mon numéro",
                                               "Appelle-moi au +33 6 12 34 56 78 ce soir."))
        async with relay.engine.connect() as connection:
            (item,) = await list_held(connection)
        await step("rejected", OAK[0], "fr", review.reject(relay.settings, relay.engine, clock, item["message_id"],
                                                            "kim", "Pas de numéros de téléphone, s'il te plaît."))

        # a bounce: Maple's message to Oak comes back; Maple is told, in Spanish
        mentor_alias = pair.mentor.alias_address(DOMAIN)
        await mail(relay, MAPLE[0], mentor_alias, "Mi primera pregunta", "¿Cómo empezaste en ingeniería?")
        delivered = await eventually(lambda: next((r for r in sink.received if r.rcpt_tos == [OAK[0]]
                                                   and r.message["Subject"] == "Mi primera pregunta"), None))
        dsn = report(delivered.mail_from, OAK[0], "failed", "5.1.1")

        async def bounce() -> None:  # sent inside the step: its notice may arrive before send() returns
            code, text = await send(relay.settings.relay.smtp.port, dsn, "", delivered.mail_from)
            assert code == 250, text

        await step("bounce", MAPLE[0], "es", bounce())

        # concern@ (the pair is paused), then the end, then a message after it
        await step("concern", OAK[0], "fr", mail(relay, OAK[0], f"concern@{DOMAIN}", "Inquiétude"))
        clock.advance(timedelta(days=12))  # past the end date: a sweep ends the pair with a farewell
        await step("farewell", MAPLE[0], "es", sweep.run(relay.settings, relay.engine, clock))
        await step("after_end", OAK[0], "fr", mail(relay, OAK[0], mentee_alias, "Encore une question"))

    assert {name: subject for name, (subject, _) in got.items()} == {
        "help": "Tu mensaje llegó a la coordinación",
        "away": "Ausencia: hasta el 10 de junio de 2026",
        "away_partner": "Maple est absent jusqu’au 10 juin 2026",
        "away_unclear": "Ausencia: el asunto debe ser «until AAAA-MM-DD» (por ejemplo «until 2026-12-03») o «back»",
        "away_passed": "Ausencia: el 2026-05-01 ya pasó",
        "digest": "Resumen: cómo elegir",
        "held": "Ton message attend d’être vérifié : Mon numéro",
        "rejected": "Ton message n’a pas été transmis : Mon numéro",
        "bounce": "No se entregó a Oak",
        "concern": "Ton inquiétude est arrivée à la coordination",
        "farewell": "Gracias y adiós de parte de STEM mentoring",
        "after_end": "Ta conversation avec Maple est finie",
    }
    assert got["away"][1].startswith("Gracias por avisarnos. No estás hasta el 10 de junio de 2026.")
    assert "No entendimos tu mensaje a away@" in got["away_passed"][1]
    assert "Pas de numéros de téléphone, s'il te plaît." in got["rejected"][1]  # the moderator's own words
    assert got["after_end"][1].startswith("Bonjour Oak, Nous avons reçu ton message")
