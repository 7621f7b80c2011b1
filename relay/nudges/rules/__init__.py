"""One module per rule: each turns a pair's Context into the mail that is due (relay/nudges/plan.py)."""
