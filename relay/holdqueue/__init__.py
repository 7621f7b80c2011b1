"""The hold queue's store-bound work: a moderator's decisions on held mail (actions.py: release, reject),
the periodic sweep of its service level (sweeps.py: digests, reminders, escalations), and the mail
that moderation sends to senders, moderators and coordinators (notify.py).

It lives apart from relay/moderation/, whose rules and policies are pure (no store, no I/O) so that
they can run in worker processes; this package writes their outcome to the store.
"""
