"""Anonymisation: turn a participant's message into one that reveals neither member's identity.

`scrub` replaces real addresses and names in text; `parts` walks the MIME tree and scrubs every text
part, attached message and attachment name; `headers` rebuilds the top-level header from an allowlist
with aliases, fresh Message-ID and mapped threading ids. `anonymize.message.anonymize` ties them.
"""
