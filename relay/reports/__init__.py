"""Program reports: figures computed from the store, rendered as text, JSON or CSV, and SVG charts."""
