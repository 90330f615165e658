"""The context-manager protocol for objects that hold a session or threads and have close()."""
from __future__ import annotations


class Closing:
    """`with Thing(...) as thing:` closes the thing on the way out, exception or not."""

    def close(self) -> None:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
