"""Console roles and what each may do. One table, read by every page, the JSON API and the CLI.

  viewer       reads the pages of their programs (held mail, pairs, audit, report); acts on nothing
  moderator    + decides on held mail (release, reject, redact, escalate)
  coordinator  + manages their programs' pairs (enrol, close, mark away and back, resume) and sees the
                 members' real names and addresses (they enrol them)
  admin        every program, every permission, and the console's accounts and sessions

Everyone but an admin sees only the programs listed on their account. A role is a set of permissions,
not a rank: a check asks for the permission it needs (`may(role, HELD_DECIDE)`), never compares roles."""

from __future__ import annotations

from typing import Final

VIEW: Final = "view"
HELD_DECIDE: Final = "held.decide"
PAIRS_MANAGE: Final = "pairs.manage"
ADDRESSES_SEE: Final = "addresses.see"
ACCOUNTS_MANAGE: Final = "accounts.manage"

PERMISSIONS: Final[dict[str, frozenset[str]]] = {
    "viewer": frozenset({VIEW}),
    "moderator": frozenset({VIEW, HELD_DECIDE}),
    "coordinator": frozenset({VIEW, HELD_DECIDE, PAIRS_MANAGE, ADDRESSES_SEE}),
    "admin": frozenset({VIEW, HELD_DECIDE, PAIRS_MANAGE, ADDRESSES_SEE, ACCOUNTS_MANAGE}),
}
ROLES: Final = tuple(PERMISSIONS)  # viewer, moderator, coordinator, admin

LABELS: Final[dict[str, str]] = {
    "viewer": "viewer (read-only)",
    "moderator": "moderator",
    "coordinator": "coordinator",
    "admin": "admin",
}


def may(role: str, permission: str) -> bool:
    return permission in PERMISSIONS.get(role, frozenset())


def all_programs(role: str) -> bool:
    """Admins see every program; the other roles the programs on their account."""
    return role == "admin"
