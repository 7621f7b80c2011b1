"""Sender authentication: does a message really come from the enrolled address it claims?

The relay checks DKIM signatures (dkimpy), SPF for the connecting IP and the envelope sender (pyspf) and
DMARC alignment of the From domain (relay.senderauth.dmarc), all through an injected DNS resolver; or,
behind a trusted front MTA, reads that MTA's Authentication-Results header. The program's policy decides
what a failure means (`sender_auth: require | prefer | off`); see relay.senderauth.verdict.
"""

from relay.senderauth.resolver import DnsTemporaryError, Resolver, SystemResolver
from relay.senderauth.verdict import Authenticator, Verdict

__all__ = ["Authenticator", "DnsTemporaryError", "Resolver", "SystemResolver", "Verdict"]
