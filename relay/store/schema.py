"""Tables of the store (SQLAlchemy Core). Alembic migrations in migrations/ create and evolve them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.types import TypeDecorator

from relay.store.rawbytes import MessageBytes


class UTCDateTime(TypeDecorator[datetime]):
    """Stores aware datetimes as naive UTC (SQLite has no time zones) and returns them aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = MetaData()

PAUSED = "paused"  # a conversation's status after a concern: nothing of it is delivered until it is resumed
ENDED = ("closed", "ended")  # closed by hand or past its end date: its mail is archived, never delivered
STOPPED = (PAUSED, *ENDED)  # nothing of the conversation is delivered now (its held mail is not released)

# Every conversation: a pair (two members) or a group (more). The table keeps the name `pairs`, and
# `pair_id` columns everywhere name the conversation (relay/store/conversations.py).
pairs = Table(
    "pairs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("program_id", String(64), nullable=False, index=True),
    Column("kind", String(16), nullable=False, server_default="pair"),  # pair | group | community
    Column("name", String(200)),  # a group's name, shown beside the sender's handle
    Column("alias", String(64), unique=True),  # a group's alias local part (a pair's aliases are its members')
    Column("policy", String(64)),  # per-conversation override of the program's policy
    Column("status", String(16), nullable=False, default="active"),  # active | paused | closed | ended
    Column("end_date", String(10)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
)

members = Table(
    "members",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pair_id", Integer, ForeignKey("pairs.id"), nullable=False),
    Column("program_id", String(64), nullable=False),
    Column("role", String(8), nullable=False),  # mentor | mentee
    Column("email", String(320), nullable=False),  # normalised real address
    Column("email_key", String(320), nullable=False),  # case-folded, for comparisons
    Column("name", String(200), nullable=False),  # real name
    Column("handle", String(64), nullable=False),
    Column("handle_key", String(64), nullable=False),
    Column("alias", String(64), nullable=False, unique=True),  # local part; mail to it reaches this member
    Column("timezone", String(64)),
    Column("hard_bounces", Integer, nullable=False, server_default="0"),
    Column("undeliverable_at", UTCDateTime),  # set after too many hard bounces; the coordinator is told
    Column("away_until", String(10)),  # YYYY-MM-DD: away through that day (relay/inbound/program/away.py)
    Column("contact_consent", String(3)),  # yes | no, after the pair ended (relay/inbound/program/exchange.py)
    Column("cadence", String(32)),  # a mentor's writing days, e.g. "mon,thu" (relay/nudges/rules/cadence.py)
    Column("nicknames", Text),  # JSON list of known nicknames, scrubbed like the name (relay/anonymize/names.py)
    Column("language", String(35)),  # BCP 47 tag: the language of the notices this member gets
    Column("digest", String(8)),  # each | daily | weekly (digest@); empty: the program's default (relay/digests/)
    Column("left_at", UTCDateTime),  # a community member no longer enrolled in the program (relay/communities.py)
    # A handle belongs to one person per program (checked by relay/enrol.py); a conversation holds a
    # person and a handle once.
    UniqueConstraint("pair_id", "email_key", name="uq_member_person"),
    UniqueConstraint("pair_id", "handle_key", name="uq_member_conversation_handle"),
    Index("ix_members_program_handle", "program_id", "handle_key"),
    Index("ix_members_pair", "pair_id"),
    Index("ix_members_email_key", "email_key"),  # a person's enrolments by address (conversations.writes_as)
)

# Further addresses a member may write from (the primary is members.email, where delivery goes):
# relay/store/addresses.py.
member_addresses = Table(
    "member_addresses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("member_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("member_id", "email_key", name="uq_member_address"),
    Index("ix_member_addresses_key", "email_key"),
    Index("ix_member_addresses_member", "member_id"),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(32), primary_key=True),  # the queue id named in "250 ... queued as"
    Column("pair_id", Integer, ForeignKey("pairs.id"), nullable=False),  # indexed first in ix_messages_pair_time
    Column("sender_id", Integer, ForeignKey("members.id"), nullable=False),
    Column("recipient_id", Integer, ForeignKey("members.id")),  # empty: every other member of a group
    Column("envelope_from", String(320), nullable=False),
    Column("remote_addr", String(64)),
    Column("original_message_id", String(998)),
    Column("body_hash", String(64), nullable=False),
    Column("subject", Text),
    Column("size", Integer, nullable=False),
    Column("raw", MessageBytes, nullable=False),  # byte-exact as received (stored compressed: rawbytes)
    Column("decision", String(16), nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Index("ix_messages_retry", "sender_id", "original_message_id"),
    # covers the report's reads by pair and time (migration 0016): they never read the table's rows
    Index("ix_messages_pair_time", "pair_id", "received_at", "id", "sender_id", "recipient_id", "decision"),
)

outbound = Table(
    "outbound",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("message_id", String(32), ForeignKey("messages.id"), index=True),  # null for digests
    Column("pair_id", Integer, ForeignKey("pairs.id")),
    Column("kind", String(16), nullable=False, server_default="relay"),  # relay | notice
    Column("rcpt", String(320), nullable=False),  # real address of the recipient
    Column("mail_from", String(320), nullable=False),  # per-message bounce address on the relay domain
    Column("out_message_id", String(998), nullable=False),
    Column("raw", MessageBytes, nullable=False),  # the message as delivered (stored compressed: rawbytes)
    Column("state", String(16), nullable=False),  # queued | sent | failed | digest (held back) | digested
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_by", String(64)),
    Column("claimed_until", UTCDateTime),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Index("ix_outbound_due", "state", "next_attempt_at"),
    Index("ix_outbound_created", "created_at", "id"),  # `queue list` pages (keyset)
    Index("ix_outbound_state_created", "state", "created_at", "id"),
    Index("ix_outbound_pair", "pair_id"),  # a conversation's copies and notices (retention's erasure)
)
# the mail to an address, compared without regard to case (a person's erasure and export: relay/archive/person.py)
Index("ix_outbound_rcpt_key", func.lower(outbound.c.rcpt))

# The hold queue: one row per held message, with its findings and the moderators' approvals.
held = Table(
    "held",
    metadata,
    Column("message_id", String(32), ForeignKey("messages.id"), primary_key=True),
    Column("pair_id", Integer, ForeignKey("pairs.id"), nullable=False, index=True),
    Column("program_id", String(64), nullable=False, index=True),
    Column("policy", String(64), nullable=False),
    Column("state", String(16), nullable=False),  # held | released | rejected
    Column("held_at", UTCDateTime, nullable=False),
    Column("reasons", Text, nullable=False),  # JSON list of {rule, kind, match, start, end, action}
    Column("release_requires", Integer, nullable=False),
    Column("approvals", Text, nullable=False),  # JSON list of moderator names who released it
    Column("decided_at", UTCDateTime),
    Column("decided_by", String(64)),
    Column("reject_reason", Text),
    Column("notified_at", UTCDateTime),  # moderators told (immediately or in a digest)
    Column("reminded_at", UTCDateTime),  # review_within passed: moderators reminded
    Column("escalated_at", UTCDateTime),  # escalate_after passed too (coordinator told), or a moderator escalated
    # Safeguarding (relay/safeguarding): urgent items sort first, reach the lead at once and again after
    # urgent_review_within when nobody acted (urgent_followup_at marks that); escalated_by is the moderator
    # who escalated it; cli_approval the account whose approval came from the command line (one at most).
    Column("severity", String(8), nullable=False, server_default="normal"),  # normal | urgent
    Column("automatic", Integer, nullable=False, server_default="0"),  # 1: rejected by the policy, no person
    Column("urgent_followup_at", UTCDateTime),
    Column("escalated_by", String(64)),
    Column("cli_approval", String(64)),
    # the subject staff mail quotes (relay.hiding.staff_subject of the anonymised copy's); None: held before 0021
    Column("staff_subject", Text),
    Index("ix_held_state", "state", "held_at"),
)

# Threading: the id the sender's client issued and the id the recipient's client received.
thread_ids = Table(
    "thread_ids",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("pair_id", Integer, ForeignKey("pairs.id"), nullable=False),
    Column("message_id", String(32), ForeignKey("messages.id"), nullable=False),
    Column("sender_role", String(8), nullable=False),
    Column("sender_id", Integer, ForeignKey("members.id", name="fk_thread_sender")),
    Column("recipient_id", Integer, ForeignKey("members.id", name="fk_thread_recipient")),  # who got generated_id
    Column("original_id", String(998)),
    Column("generated_id", String(998), nullable=False),
    Index("ix_thread_original", "pair_id", "original_id"),
    Index("ix_thread_generated", "pair_id", "generated_id"),
)

# Small facts about this installation, such as the secret that signs bounce addresses.
relay_state = Table(
    "relay_state",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(32), nullable=False, index=True),
    Column("actor", String(64), nullable=False),  # "relay", "cli:<user>", a moderator's name
    Column("pair_id", Integer),
    Column("message_id", String(32), index=True),
    Column("detail", Text, nullable=False),  # JSON: the who/what/why
    # a pair's events, and of one kind (a pair's nudges: the console's pair health) without reading the others
    Index("ix_events_pair_kind", "pair_id", "kind"),
)

# The archive's hash chain (relay.archive.chain): one entry per archived row (an inbound message, an
# outbound copy or notice, an event), appended in the transaction that writes the row. Each entry holds
# the hash of the row's content and of the entry before it, so an edited, removed or reordered row breaks it.
archive_chain = Table(
    "archive_chain",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),  # 1, 2, 3, ... without gaps
    Column("at", UTCDateTime, nullable=False),  # when the row was written
    Column("kind", String(16), nullable=False),  # message | outbound | event
    Column("ref", String(32), nullable=False),  # the row's id (an event's id as text)
    Column("pair_id", Integer),
    Column("content_hash", String(64), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("entry_hash", String(64), nullable=False),
    Index("ix_archive_chain_ref", "kind", "ref"),
)


# Mail the relay writes on its own schedule (nudges, check-ins, notices): one row per deterministic key,
# inserted in the transaction that queues the mail, so a second sweep's insert is a no-op (relay/nudges/).
notice_keys = Table(
    "notice_keys",
    metadata,
    Column("key", String(200), primary_key=True),  # e.g. nudge.first:<pair>:<waiting message id>
    Column("kind", String(32), nullable=False),
    Column("pair_id", Integer, ForeignKey("pairs.id")),
    Column("at", UTCDateTime, nullable=False),
    Column("sent", Integer, nullable=False),  # 0: passed over (a later stage was due at once)
    # A check-in's silence: the time it is counted from (the pair's last message, or its start), which its key
    # names too; the sweep's query of due pairs leaves out a pair whose current silence has both check-ins
    Column("anchor_at", UTCDateTime),
    Index("ix_notice_keys_pair_kind_anchor", "pair_id", "kind", "anchor_at"),
)


# Review console (relay/console): moderator accounts, login throttling, and moderators' edits of held mail.
moderators = Table(
    "moderators",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("username", String(64), nullable=False, unique=True),  # case-folded
    Column("password_hash", Text, nullable=False),  # argon2id
    Column("role", String(16), nullable=False),  # moderator | admin
    Column("programs", Text, nullable=False),  # JSON list of program ids a moderator reviews
    Column("token_hash", String(64), unique=True),  # sha256 of the API token (shown once, never stored)
    Column("created_at", UTCDateTime, nullable=False),
    Column("disabled_at", UTCDateTime),  # set: no login, no session, no token (`moderator disable`)
)

# Failed logins per account and per client address: survives restarts, so a lockout does too.
console_logins = Table(
    "console_logins",
    metadata,
    Column("key", String(128), primary_key=True),  # "user:<name>" | "addr:<ip>"
    Column("failures", Integer, nullable=False),
    Column("window_start", UTCDateTime, nullable=False),
    Column("locked_until", UTCDateTime),
)

# A moderator's redaction of a held message: a new record linked to the original, which stays as received.
message_edits = Table(
    "message_edits",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("message_id", String(32), ForeignKey("messages.id"), nullable=False, index=True),
    Column("raw", LargeBinary, nullable=False),  # the edited message, built from the original's headers
    Column("moderator", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)

# A logged-in console session: the browser's cookie holds a random token, the store only its SHA-256.
# Revoked at logout, when the password changes, or by an admin; a revoked or expired row lets nobody in.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),  # shown to admins, never a credential
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("moderator_id", Integer, ForeignKey("moderators.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),  # the absolute end; idleness ends it earlier
    Column("revoked_at", UTCDateTime),
    Column("revoked_by", String(64)),  # "logout", "password", or the admin who revoked it
    Column("address", String(64)),
    Column("user_agent", String(200)),
)

# A browser that logged in to an account before (its long-lived cookie's SHA-256): the right password
# from it is accepted while the account is throttled for other browsers (relay.console.throttle).
console_devices = Table(
    "console_devices",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("moderator_id", Integer, ForeignKey("moderators.id"), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=False),
    Column("failures", Integer, nullable=False),  # wrong passwords from it; at the limit it is forgotten
)
