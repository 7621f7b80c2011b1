"""A sweep run by hand with a simulated clock (`nudges run --now`) dates its mail with the real send time:
receivers score a Date in the future as spam."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime

from sqlalchemy import select

from relay.store.schema import outbound
from tests.nudging import write_program
from tests.support import Layout, cli, create_pair, rows_now


def test_nudges_run_with_a_future_now_dates_mail_with_the_real_time(layout: Layout) -> None:
    write_program(layout, responsiveness={"quiet_hours": ""})
    pair = create_pair(layout)
    simulated = datetime.now(UTC) + timedelta(days=20)  # the pair has been silent for 20 days
    before = datetime.now(UTC).replace(microsecond=0)
    ran = cli(layout, "nudges", "run", "--now", simulated.isoformat(), "--json")
    after = datetime.now(UTC)
    assert ran.returncode == 0, ran.stderr
    queued = rows_now(layout, select(outbound.c.raw, outbound.c.next_attempt_at)
                      .where(outbound.c.pair_id == pair["id"], outbound.c.kind == "notice"))
    assert queued, ran.stdout  # the silence check-in to both
    for raw, due in queued:
        dated = parsedate_to_datetime(str(email.message_from_bytes(raw)["Date"]))
        assert before <= dated <= after, (dated, simulated)
        assert due <= after  # and due for delivery at once
