"""Safeguarding: a disclosure or a grooming sign always reaches a person, fast.

A policy rule or keywords list marked `severity: urgent` makes a message held for a person whatever the
other rules say (relay.moderation.decide). This package owns what follows from such an urgent hold, and
the other ways a person stays in the loop:
- notices: the mail itself: the safeguarding lead's URGENT alert, the moderators' URGENT alert, the help
  text its sender receives, the follow-up when nobody acted in time, a moderator's escalation to the lead,
  and the report of automatic rejections to the moderators;
- holding: what intake adds to an accepted message in the same commit as its hold (or its automatic
  rejection): those notices, and the queue row;
- sweep: the periodic part: the follow-up after `urgent_review_within`, and the digest of automatic
  rejections;
- escalation: a moderator's "Escalate to safeguarding lead";
- approvals: what the command line may approve (one approval, as a named existing console account).

Program key: `safeguarding: {lead: ADDRESS, help_text: TEXT, urgent_review_within: 1h}` (help_text: one
text, or language -> text with a `default`: relay/localtext.py); without it the coordinator is told in the
lead's place. Mail never names a participant's real address or name: handles,
roles, the pair, the program, the findings and a console link.
"""
