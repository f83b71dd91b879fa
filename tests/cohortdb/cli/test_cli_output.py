"""How `cohortdb sql` prints a result for a person: capped rows, wide rows as blocks, NULL apart from ''."""

from __future__ import annotations

import csv
import io

import pytest

from ingest.settings import Settings
from tests.cli import run_cli
from tests.warehouse import rows


@pytest.fixture(autouse=True)
def _terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")


def _sql(built: Settings, *args: str) -> str:
    result = run_cli("-w", str(built.warehouse_dir), "sql", *args)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_a_table_shows_the_first_rows_and_says_how_many_more(built: Settings) -> None:
    printed = _sql(built, "select range as n from range(100)").splitlines()
    assert [line.strip("│ ") for line in printed if line.startswith("│")] == [str(n) for n in range(40)]
    assert printed[-1] == "… 60 more rows (100 in all): --limit N shows more, --format csv every one"
    limited = _sql(built, "select range as n from range(100)", "--limit", "5").splitlines()
    assert [line.strip("│ ") for line in limited if line.startswith("│")] == ["0", "1", "2", "3", "4"]
    assert limited[-1].startswith("… 95 more rows (100 in all)")
    assert len(_sql(built, "select range as n from range(100)", "--format", "csv").splitlines()) == 101
    assert _sql(built, "select range as n from range(100)", "-f", "csv", "--limit", "2").splitlines() == ["n", "0", "1"]
    assert "more rows" not in _sql(built, "select range as n from range(40)")


def test_null_empty_and_booleans(built: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    query = "select null as nothing, '' as empty, 'NULL' as word, true as yes, ['CR'] as l"
    cells = [cell.strip() for cell in _sql(built, query).splitlines()[3].strip("│").split("│")]
    assert cells == ["NULL", "", "NULL", "true", '["CR"]']
    monkeypatch.setenv("FORCE_COLOR", "1")  # as on a terminal: a null is a dim NULL, the word is not dim
    row = _sql(built, query).splitlines()[3]
    assert row.count("\x1b[2mNULL") == 1 and row.count("NULL") == 2


def test_a_result_too_wide_for_the_terminal_is_one_block_per_row(built: Settings) -> None:
    query = "select *, null::varchar as not_known from marts.imaging_studies order by study_uid limit 2"
    studies = rows(built, query)
    printed = _sql(built, query)
    assert "┃" not in printed and "│" not in printed
    blocks = [block.splitlines() for block in printed.strip("\n").split("\n\n")]
    assert len(blocks) == 2 and all(len(block) == len(studies[0]) for block in blocks)
    width = max(len(name) for name in studies[0])
    for block, study in zip(blocks, studies, strict=True):
        assert block[0] == f"{'study_uid':>{width}} = {study['study_uid']}"
        assert [line.split(" = ", 1)[0].strip() for line in block] == list(study)
        assert all(line.index(" = ") == width for line in block)
    assert all(block[-1] == f"{'not_known':>{width}} = NULL" for block in blocks)


def test_a_long_value_folds_in_a_table_that_fits(built: Settings) -> None:
    printed = _sql(built, "select 7 as n, repeat('x', 300) as long")
    assert printed.startswith("┏") and all(len(line) <= 120 for line in printed.splitlines())
    assert printed.count("x") == 300  # folded over several lines, never cut


def test_csv_and_json_print_every_row(built: Settings) -> None:
    count = rows(built, "select count(*) as n from raw.dicom_elements")[0]["n"]
    assert count > 1000
    printed = _sql(built, "select file_id, tag_path from raw.dicom_elements", "--format", "csv")
    assert len(list(csv.DictReader(io.StringIO(printed)))) == count


def test_no_rows_too_wide_for_a_table_still_says_so(built: Settings) -> None:
    printed = _sql(built, "select * from marts.imaging_studies where false")
    columns = list(rows(built, "select * from marts.imaging_studies limit 1")[0])
    assert printed == f"0 rows; columns: {', '.join(columns)}\n"
