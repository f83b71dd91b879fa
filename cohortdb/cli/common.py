"""What every command module shares: the state the root callback resolves, the
option types used by more than one command, progress and warnings on stderr."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from typer.core import TyperArgument, TyperGroup, TyperOption

from cohortdb.warehouse import Target, WarehouseTarget, open_target
from ingest.errors import UserError
from ingest.settings import Settings

stderr = Console(stderr=True, highlight=False)


@dataclass(frozen=True)
class BigQueryOptions:
    """``--project``, ``--dataset-prefix``, ``--location``, ``--api-endpoint`` as given (None: not given)."""

    project: str | None = None
    dataset_prefix: str | None = None
    location: str | None = None
    api_endpoint: str | None = None


@dataclass(frozen=True)
class State:
    """What ``--warehouse`` and ``--cohorts`` resolved to (absolute paths), and the warehouse
    engine (``--target`` and BigQuery's options)."""

    settings: Settings
    cohorts_dir: Path
    target: Target = Target.DUCKDB
    bigquery: BigQueryOptions = BigQueryOptions()

    def warehouse(self) -> WarehouseTarget:
        """The warehouse on the chosen target.

        Raises:
            UserError: BigQuery without a project or dataset prefix (options or environment).
        """
        if self.target is Target.BIGQUERY:
            from cohortdb.warehouse.bigquery import config_from

            options = self.bigquery
            config = config_from(options.project, options.dataset_prefix, options.location, options.api_endpoint)
            return open_target(self.settings, self.target, config)
        return open_target(self.settings, self.target)

    def require_duckdb(self, what: str) -> None:
        """Refuse ``--target bigquery`` for a command that works on the embedded warehouse only.

        Raises:
            UserError: the target is not DuckDB.
        """
        if self.target is not Target.DUCKDB:
            raise UserError(f"{what} works on the embedded DuckDB warehouse only, not on --target {self.target} "
                            "(drop --target, or unset $COHORTDB_TARGET)")


def state(ctx: typer.Context) -> State:
    """The :class:`State` the root callback stored (the nearest context that has it)."""
    found: State = ctx.find_object(State)
    return found


class OutputFormat(enum.StrEnum):
    """How query results are printed."""

    TABLE = "table"
    CSV = "csv"
    JSON = "json"


FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="How to print the rows.")]
LimitOption = Annotated[int | None, typer.Option(
    "--limit", min=1, help="Print at most N rows (default: a table shows 40, csv and json every row).")]
OutOption = Annotated[Path, typer.Option("--out", "-o", help="The file to write (replaced atomically).")]


def plain_help(root: TyperGroup) -> None:
    """Give every command under ``root`` click's plain help: an option shows ``PATH``, ``TEXT``,
    ``N`` or its choices (typer shows ``<path>``, ``<str>``), a flag shows nothing (typer shows
    ``<bool>``), an argument its name (typer shows ``<str>`` and braces it: ``{query}``).

    Idempotent; an option's own ``metavar`` is kept.
    """
    for command in _tree(root):
        ctx = typer.Context(command, **root.context_settings)  # subcommands inherit the help names
        for param in [*command.params, command.get_help_option(ctx)]:
            if isinstance(param, TyperArgument) and not isinstance(param, _PlainArgument):
                param.__class__ = _PlainArgument
            elif isinstance(param, TyperOption) and param.metavar is None:
                if param.is_flag or param.count:
                    param.metavar = ""
                else:
                    param.metavar = _plain_type(param.display_type(ctx))


_PLAIN_TYPES = {"str": "TEXT", "path": "PATH", "file": "FILE", "directory": "DIR", "int": "N", "float": "NUMBER"}


def _plain_type(typer_label: str) -> str:
    """``<list[Path]>`` → ``PATH``, ``<int range>`` → ``N``, ``<table|csv|json>`` → ``[table|csv|json]``."""
    label = re.sub(r"^list\[(.*)\]$", r"\1", typer_label.strip("<>")).removesuffix(" range")
    if "|" in label:
        return f"[{label}]"
    return _PLAIN_TYPES.get(label.lower(), label.upper())


def _tree(command: Any) -> Iterator[Any]:
    yield command
    if isinstance(command, TyperGroup):
        for sub in command.commands.values():
            yield from _tree(sub)


class _PlainArgument(TyperArgument):
    """An argument shown by its name alone (``QUERY``, ``PATHS...``), as click shows it."""

    def display_type_rich(self, ctx: Any) -> None:
        return None

    def _usage_display_name(self) -> str:
        name = self.display_name_raw.upper()
        if self.nargs != 1:
            name += "..."
        return name if self.required else f"[{name}]"


def counted(n: int, noun: str) -> str:
    """``1 error``, ``2 errors`` (nouns that take an s)."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def progress() -> Progress:
    """A transient progress bar on stderr (silent when stderr is not a terminal)."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=stderr, transient=True, disable=not stderr.is_terminal,
    )


def warn(message: str) -> None:
    """One warning line on stderr."""
    stderr.print(f"[yellow]warning:[/yellow] {escape(message)}", soft_wrap=True)
