"""What every command module shares: the state the root callback resolves, the
option types used by more than one command, progress and warnings on stderr."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cohortdb.warehouse import Target, WarehouseTarget, open_target
from ingest.settings import Settings

stderr = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class State:
    """What ``--warehouse`` and ``--cohorts`` resolved to (absolute paths)."""

    settings: Settings
    cohorts_dir: Path

    def warehouse(self, target: Target = Target.DUCKDB) -> WarehouseTarget:
        return open_target(self.settings, target)


def state(ctx: typer.Context) -> State:
    """The :class:`State` the root callback stored (the nearest context that has it)."""
    found: State = ctx.find_object(State)
    return found


class OutputFormat(enum.StrEnum):
    """How query results are printed."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


TargetOption = Annotated[Target, typer.Option("--target", help="Warehouse engine.")]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="How to print the rows.")]
LimitOption = Annotated[int | None, typer.Option(
    "--limit", min=1, help="Print at most N rows (default: a table shows 40, csv and json every row).")]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="The file to write (replaced atomically).")]


def progress() -> Progress:
    """A transient progress bar on stderr (silent when stderr is not a terminal)."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=stderr, transient=True, disable=not stderr.is_terminal,
    )


def warn(message: str) -> None:
    """One warning line on stderr."""
    stderr.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)
