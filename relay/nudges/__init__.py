"""Keeping relationships alive: sweeps over the store that nudge, check in, and tell the coordinator.

Each sweep is a pure function of (settings, store, clock): `sweep.run` plans what is due, and sends each
piece of mail once, keyed (relay/nudges/keys.py) in the transaction that queues it. The scheduler
(relay/nudges/scheduler.py) runs the sweeps inside `serve`; `mentor-relay nudges run` runs one by hand.
"""
