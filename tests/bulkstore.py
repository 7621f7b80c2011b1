"""Many pairs in a test's store, fast: written through the store code (relay.store.pairs.insert_pair, a
thousand per transaction), as `pair create` writes them but without the welcome mail and its event.
For the tests of what must stay fast and paged on a large store (sweeps, console pages, listings)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from relay import ids
from relay.store.database import create_engine, migrate, transaction
from relay.store.pairs import insert_pair
from tests.support import DOMAIN, Layout, store_url


@dataclass(frozen=True)
class Made:
    id: int
    mentee_email: str
    mentor_address: str  # the mentor's alias: where the mentee writes


async def enrol_many(layout: Layout, count: int, created_at: datetime, program: str = "stem",
                     prefix: str = "") -> list[Made]:
    """`count` pairs of `program`, enrolled at `created_at`; handles Oak<k>/Maple<k> (after `prefix`)."""
    engine = create_engine(store_url(layout))
    made: list[Made] = []
    try:
        await migrate(engine)
        for start in range(0, count, 1000):
            async with transaction(engine) as connection:
                for k in range(start, min(count, start + 1000)):
                    mentor_alias = ids.alias_local_part(f"{prefix}Oak{k}")
                    mentee_email = f"{prefix.lower()}mentee{k}@mail.example.org"
                    people = {
                        "mentor": {"email": f"{prefix.lower()}mentor{k}@uni.example.net",
                                   "name": f"Zebedee Quill{k}", "handle": f"{prefix}Oak{k}", "alias": mentor_alias},
                        "mentee": {"email": mentee_email, "name": f"Ysolde Fennel{k}",
                                   "handle": f"{prefix}Maple{k}",
                                   "alias": ids.alias_local_part(f"{prefix}Maple{k}")},
                    }
                    pair_id = await insert_pair(connection, program_id=program, policy=None, end_date=None,
                                                created_at=created_at, people=people)
                    made.append(Made(pair_id, mentee_email, f"{mentor_alias}@{DOMAIN}"))
    finally:
        await engine.dispose()
    return made
