"""Several addresses per member (`pair address add | remove`): further addresses a member may write
from — a phone's, a school account. Mail from any of them is taken as the member's (intake:
relay/inbound/partner.py, group.py, the program addresses' enrolments), sender authentication applies
to each as to the primary, delivery still goes to the primary (members.email), and every one of them is
scrubbed from what the partner receives (relay/anonymize/scrub.Identity.other_emails, the identity rule).

An address may not be the member's primary, be added twice, or belong to anyone else in the
conversation (mail from it would then name two people). The events record the role, not the address.
"""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from relay.clock import Clock
from relay.config import Settings
from relay.enrol import EnrolmentError, normalise_email
from relay.store import events
from relay.store.conversations import ROLES, Member, email_key
from relay.store.database import transaction
from relay.store.pairs import get_pair
from relay.store.schema import member_addresses


async def add_address(settings: Settings, engine: AsyncEngine, clock: Clock, pair_id: int, role: str, address: str,
                      actor: str = "cli") -> Member:
    """The member with the address added, or EnrolmentError worded for the admin."""
    if role not in ROLES:
        raise EnrolmentError(f"the role must be mentor or mentee, not {role!r}")
    email = normalise_email(address, settings.relay.enrolment.check_deliverability)
    now = clock.now()
    async with transaction(engine) as connection:
        pair = await get_pair(connection, pair_id)
        if pair is None:
            raise EnrolmentError(f"no pair with id {pair_id}")
        member = pair.member(role)
        if member.writes_from(email):
            raise EnrolmentError(f"{email} is already an address of the {role} of pair {pair_id}")
        if pair.partner_of(member).writes_from(email):
            raise EnrolmentError(f"{email} is an address of the other member of pair {pair_id}")
        await connection.execute(member_addresses.insert().values(
            member_id=member.id, email=email, email_key=email_key(email), created_at=now))
        await events.record(connection, "address_added", now, actor=actor, pair_id=pair_id, role=role)
        fresh = await get_pair(connection, pair_id)
    assert fresh is not None
    return fresh.member(role)


async def remove_address(engine: AsyncEngine, clock: Clock, pair_id: int, role: str, address: str,
                         actor: str = "cli") -> Member:
    """The member without the address; mail from it is refused as a stranger's from then on."""
    if role not in ROLES:
        raise EnrolmentError(f"the role must be mentor or mentee, not {role!r}")
    now = clock.now()
    async with transaction(engine) as connection:
        pair = await get_pair(connection, pair_id)
        if pair is None:
            raise EnrolmentError(f"no pair with id {pair_id}")
        member = pair.member(role)
        key = email_key(address.strip())
        if key == member.email_key:
            raise EnrolmentError(f"{address} is the {role}'s primary address (where their mail is delivered); "
                                 f"it cannot be removed")
        found = (await connection.execute(select(member_addresses.c.id).where(
            member_addresses.c.member_id == member.id, member_addresses.c.email_key == key))).first()
        if found is None:
            raise EnrolmentError(f"{address} is not an added address of the {role} of pair {pair_id}")
        await connection.execute(delete(member_addresses).where(member_addresses.c.id == found.id))
        await events.record(connection, "address_removed", now, actor=actor, pair_id=pair_id, role=role)
        fresh = await get_pair(connection, pair_id)
    assert fresh is not None
    return fresh.member(role)
