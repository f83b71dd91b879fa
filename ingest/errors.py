"""The one exception type for errors a user can cause and fix."""

from __future__ import annotations


class UserError(Exception):
    """A problem with the user's input or environment.

    The CLI prints ``str(error)`` on one line and exits non-zero, without a
    traceback. The message must say what is wrong and, where possible, what to do.
    """
