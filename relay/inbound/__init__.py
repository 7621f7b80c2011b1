"""Inbound mail: what may enter the relay and how each kind of message is taken in.

See relay/inbound/router.py for the map from an envelope's recipient to the module that takes the mail.
"""
