"""The worker processes that do a message's CPU work (parse, anonymise, inspect, redact, serialise, DKIM).

relay/workers/pool.py owns the processes (start/stop with `serve`, one task at a time per process, a CPU
budget per task); relay/workers/tasks.py holds the functions they run, which call the pure line
(relay/pipeline.py, relay/anonymize, relay/moderation, relay/dkim/signer.py) and nothing from the store.
"""
