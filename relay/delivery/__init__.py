"""Delivery: transports (smtp, maildir) and the worker that drains the outbound queue with retries."""
