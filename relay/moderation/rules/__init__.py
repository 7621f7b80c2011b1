"""Moderation rules: each module holds one rule, a predicate over a message that yields findings."""
