"""The one exception type for errors a user can cause and fix."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


class UserError(Exception):
    """A problem with the user's input or environment.

    The CLI prints ``str(error)`` on one line and exits non-zero, without a
    traceback. The message must say what is wrong and, where possible, what to do.
    """


@contextmanager
def requires(package: str, install: str) -> Iterator[None]:
    """Import ``package`` (a dependency that may be missing) inside the block: an
    ImportError there becomes a :class:`UserError` giving the ``install`` command."""
    try:
        yield
    except ImportError as error:
        raise UserError(f"{package} cannot be imported ({error}); install it: {install}") from None
