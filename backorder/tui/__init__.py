"""The supervisor console: a Textual app over the control socket (asyncio, never trio)."""
