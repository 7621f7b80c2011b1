"""The review console: a small server-rendered web application where moderators decide on held mail.

Served by `mentor-relay serve` on console.host:console.port (relay.console.server); the application is
built by relay.console.app.create_app. Plain HTML forms, no JavaScript, a strict Content-Security-Policy.
"""

from relay.console.app import create_app

__all__ = ["create_app"]
