"""The hold queue's store-bound work: a moderator's decisions on held mail (actions.py: release, reject)
and the periodic sweep of its service level (sweeps.py: digests, reminders, escalations).

It lives apart from relay/moderation/, whose rules and policies are pure (no store, no I/O) so that they
can run in worker processes; this package is what writes their outcome to the store.
"""
