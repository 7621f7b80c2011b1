"""Allows `python -m relay ...` as a synonym of the `mentor-relay` console script."""

from relay.cli import main

raise SystemExit(main())
