"""mentor-relay: an email relay for online mentoring programs.

The package is laid out along the path of one message (see DESIGN.md and the README's Layout):
smtp -> inbound (intake) -> store -> moderation -> anonymize -> store (outbound queue) -> delivery.
"""

__version__ = "0.1.0"
