"""Links into the review console, for the mail the relay writes (moderator notices and digests, reminders,
coordinator escalations).

Built from `console.public_url` only: the address people open in their browser, usually a reverse proxy
with HTTPS in front of the console. The console's bind address (console.host:port) never appears in mail:
it is what the relay listens on, which a moderator's phone cannot reach. Without public_url a mail names
the held message and carries no link (`check-config` warns about that)."""

from __future__ import annotations

from relay.config import Settings


def console_base(settings: Settings) -> str | None:
    """The console's public base address without a trailing slash, or None when it is not configured."""
    return settings.relay.console.public_url

