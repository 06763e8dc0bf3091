"""The asynchronous client (the one description both clients are made from)."""
