"""The store: every table, the engine, group commit, and the queries the rest of the relay uses."""
