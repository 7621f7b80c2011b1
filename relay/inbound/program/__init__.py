"""The program's own addresses on the relay domain: away@, help@, concern@, share@.

Mail to them comes only from enrolled participants and asks the program for something (away mode, the
coordinator's help, a concern that pauses the pair, consent to stay in touch); handlers.py maps each
address to its module. This package imports nothing at load so that others may read ADDRESSES cheaply.
"""

ADDRESSES = ("away", "help", "concern", "share")  # local parts; relay/inbound/program/handlers.py serves each
