"""Work done once at start, so that the first messages do not pay for it.

- The public suffix trie that tldextract builds lazily on its first lookup (DMARC alignment in
  relay/senderauth, the link and address checks of the contact-info rule). Built on demand it cost the
  first messages about a second of CPU each on a loaded machine, several times over: sender
  authentication runs in threads, and each thread that got there first built its own copy.
- `gc.freeze()` once the start-up objects exist: the trie alone is some hundred thousand objects, and
  every full collection walked all of them again (py-spy showed gc_collect_main at ~7% of the relay's
  samples under load). Frozen objects are never collected, which is right for what lives as long as
  the process anyway.
"""

from __future__ import annotations

import gc


def suffix_lists() -> None:
    """Build the public suffix tries now (each module keeps its own cached extractor)."""
    from relay.moderation.rules import contact_info
    from relay.senderauth import dmarc

    dmarc.org_domain("warm-up.example.org")
    contact_info._suffixes()("warm-up.example.org")  # its cached extractor; the rule module is left as it is


def freeze() -> None:
    """Move every object alive now out of the collector's sight (call when start-up is done)."""
    gc.collect()
    gc.freeze()
