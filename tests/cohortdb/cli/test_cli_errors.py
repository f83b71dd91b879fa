"""How the root group ends a run: a user mistake is one line (exit 2), Ctrl-C is ``interrupted`` (130)."""

from __future__ import annotations

import shutil
import signal

import pytest
import typer
from typer.testing import CliRunner

from cohortdb.cli.main import INTERRUPTED_EXIT, USER_ERROR_EXIT, _Group
from ingest.errors import UserError


def _ctrl_c_then_ebadf() -> None:
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt:
        raise OSError(9, "Bad file descriptor") from None  # shutil.rmtree's finally, interrupted


def _ctrl_c_inside_an_import() -> None:
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as exc:
        raise ImportError("half-imported module") from exc


def _app(action):  # noqa: ANN001, ANN202
    app = typer.Typer(cls=_Group)

    @app.command()
    def run() -> None:
        action()

    @app.command()
    def other() -> None:
        pass

    return app


@pytest.mark.parametrize("action", [_ctrl_c_then_ebadf, _ctrl_c_inside_an_import])
def test_an_error_raised_while_ctrl_c_unwinds_still_ends_as_interrupted(action) -> None:  # noqa: ANN001
    before = signal.getsignal(signal.SIGINT)
    result = CliRunner().invoke(_app(action), ["run"])
    assert result.exit_code == INTERRUPTED_EXIT, result.output
    assert result.output.strip() == "interrupted"
    # only the console script ignores a second Ctrl-C: a library caller's processes would inherit it
    assert signal.getsignal(signal.SIGINT) is before


def test_a_user_error_is_one_line_and_a_bug_is_not_hidden() -> None:
    def mistake() -> None:
        raise UserError("no such cohort: x")

    result = CliRunner().invoke(_app(mistake), ["run"])
    assert result.exit_code == USER_ERROR_EXIT
    assert result.output.strip().splitlines() == ["error: no such cohort: x"]

    def bug() -> None:
        shutil.rmtree("/nonexistent/cohortdb-test")

    result = CliRunner().invoke(_app(bug), ["run"])
    assert isinstance(result.exception, FileNotFoundError)


def test_brackets_in_an_error_are_printed_as_they_are() -> None:
    def missing() -> None:
        raise UserError("dbt is not installed: pip install 'cohortdb[dbt]'")

    result = CliRunner().invoke(_app(missing), ["run"])
    assert result.output.strip() == "error: dbt is not installed: pip install 'cohortdb[dbt]'"
