"""The one error type for refused input: a stable snake_case code and a human sentence."""


class Rejected(Exception):
    """A request that must be refused; nothing was changed. ``code`` is documented in docs/protocol.md."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
