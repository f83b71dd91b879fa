"""How hard a source's client tries a request: one policy, the defaults each source's own."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts per request, exponential backoff bounds (seconds), request timeout (seconds)."""

    attempts: int
    initial_wait: float
    max_wait: float
    timeout: float

    def retrying(self, transient: Callable[[BaseException], bool]) -> Retrying:
        """A tenacity ``Retrying`` that tries again while ``transient(error)`` says so, then
        re-raises the last error."""
        return Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.initial_wait, max=self.max_wait),
            retry=retry_if_exception(transient),
            reraise=True,
        )
