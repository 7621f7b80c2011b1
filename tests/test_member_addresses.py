"""Several addresses per member: a mentee writes from a second address, the mentor's copy shows neither
of her addresses, delivery stays on the primary; a removed address is refused as a stranger's."""

from __future__ import annotations

import json

from relay.config import load_settings
from relay.inbound.aliases import ALIAS_TTL
from relay.service import Relay
from tests.support import MENTEE, MENTOR, Layout, Sink, acli, acreate_pair, send, simple_message

PHONE = "jane.phone@mobile.example.com"


class Ticker:
    """The relay's monotonic seconds, moved only by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_second_address_is_accepted_hidden_and_removable(layout: Layout, sink: Sink) -> None:
    ticker = Ticker()
    relay = Relay(load_settings(layout.config), monotonic=ticker)
    await relay.start()
    try:
        pair = await acreate_pair(layout)
        mentor_alias, mentee_alias = pair["mentor_alias"], pair["mentee_alias"]
        added = await acli(layout, "pair", "address", "add", str(pair["id"]), "--role", "mentee", "--email", PHONE,
                           "--json")
        assert added.returncode == 0, added.stderr
        assert json.loads(added.stdout)["other_emails"] == [PHONE]

        body = (f"Hi! This is my phone, {PHONE}; my usual address is {MENTEE['email']}.\n"
                f"mailto:{PHONE.upper()}\n")
        code, text = await send(layout.smtp_port, simple_message(f"Jane Doe <{PHONE}>", mentor_alias, "From my phone",
                                                                 body), PHONE, mentor_alias)
        assert code == 250, text
        delivered = (await sink.wait_for(1))[0]
        assert delivered.rcpt_tos == [MENTOR["email"]]
        copy = delivered.message.as_string()
        assert PHONE not in copy.lower() and MENTEE["email"] not in copy.lower()
        assert "jane" not in copy.lower() and "mobile.example.com" not in copy.lower()
        assert delivered.message["From"].addresses[0].addr_spec == mentee_alias

        # the mentor's answer goes to the mentee's primary address only
        code, _ = await send(layout.smtp_port, simple_message(f"José Müller <{MENTOR['email']}>", mentee_alias, "Re",
                                                              "Nice to hear from you."), MENTOR["email"], mentee_alias)
        assert code == 250
        assert (await sink.wait_for(2))[1].rcpt_tos == [MENTEE["email"]]

        # an address of the partner cannot be added; a removed address is a stranger's again
        taken = await acli(layout, "pair", "address", "add", str(pair["id"]), "--role", "mentee", "--email",
                           MENTOR["email"])
        assert taken.returncode == 1 and "other member" in taken.stderr
        removed = await acli(layout, "pair", "address", "remove", str(pair["id"]), "--role", "mentee", "--email", PHONE)
        assert removed.returncode == 0, removed.stderr
        ticker.now += ALIAS_TTL + 0.1  # the alias cache (the relay's monotonic seconds) lets go
        code, text = await send(layout.smtp_port, simple_message(f"Jane Doe <{PHONE}>", mentor_alias, "Again", "Hi"),
                                PHONE, mentor_alias)
        assert code == 550 and "only from the person it was set up for" in text
        again = await acli(layout, "pair", "address", "remove", str(pair["id"]), "--role", "mentee", "--email", PHONE)
        assert again.returncode == 1 and "not an added address" in again.stderr
        primary = await acli(layout, "pair", "address", "remove", str(pair["id"]), "--role", "mentee", "--email",
                             MENTEE["email"])
        assert primary.returncode == 1 and "primary address" in primary.stderr
    finally:
        await relay.stop()
