"""The record: the hash-chained archive, its verification, retention and legal hold, and exports."""
