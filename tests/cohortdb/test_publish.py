"""Publishing: `load` and `build` write the next warehouse and rename it into place when complete."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb

from cohortdb.warehouse.duckdb import FAILED_FILE, LOCK_FILE, NEXT_FILE, WriterLock, database_path
from ingest.settings import Settings, resolve_settings
from tests.cli import run_cli
from tests.warehouse import rows


def _ingest(settings: Settings, studies: list[dict[str, object]]) -> None:
    dump = settings.warehouse_dir.parent / "studies.json"
    dump.write_text(json.dumps(studies))
    result = run_cli("--warehouse", str(settings.warehouse_dir), "ingest", "guppy", "--index", "imaging_study",
                     "--from-json", str(dump))
    assert result.exit_code == 0, result.output


def _cohorts(tmp_path: Path, **definitions: str) -> Path:
    directory = tmp_path / "cohorts"
    directory.mkdir(exist_ok=True)
    for stale in directory.iterdir():
        stale.unlink()
    for name, modality in definitions.items():
        definition = f"index: imaging_study\nfilter: {{'=': {{study_modality: {modality}}}}}\n"
        (directory / f"{name}.yml").write_text(definition)
    return directory


def _build(settings: Settings, cohorts: Path, *args: str) -> object:
    return run_cli("--warehouse", str(settings.warehouse_dir), "--cohorts", str(cohorts), "build", *args)


STUDIES = [{"submitter_id": "1.2.3", "study_modality": ["CT"]}, {"submitter_id": "1.2.4", "study_modality": ["CR"]}]


def _built(tmp_path: Path) -> tuple[Settings, Path]:
    """A warehouse built from :data:`STUDIES` with the cohort ``only_ct``, and its cohorts directory."""
    settings = resolve_settings(tmp_path / "w")
    cohorts = _cohorts(tmp_path, only_ct="CT")
    _ingest(settings, STUDIES)
    assert _build(settings, cohorts).exit_code == 0  # type: ignore[attr-defined]
    return settings, cohorts


def _published(settings: Settings) -> tuple[int, int]:
    """Which file is live: its inode and modification time (ns)."""
    stat = database_path(settings).stat()
    return stat.st_ino, stat.st_mtime_ns


def _sigint_default() -> None:
    """In the child: Ctrl-C as a terminal gives it, whatever this process does with SIGINT (a shell
    starts background jobs with SIGINT ignored, and an ignored signal is inherited through exec)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_a_reader_never_makes_a_build_fail_and_sees_the_new_one_next(tmp_path: Path) -> None:
    settings, cohorts = _built(tmp_path)
    reader = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import duckdb, sys
            con = duckdb.connect({str(database_path(settings))!r}, read_only=True)
            print(con.execute("select count(*) from marts.imaging_studies").fetchall()[0][0], flush=True)
            sys.stdin.readline()
            print(con.execute("select count(*) from marts.imaging_studies").fetchall()[0][0], flush=True)
        """)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        assert reader.stdout is not None and reader.stdin is not None
        assert reader.stdout.readline().strip() == "2"  # it holds the file open from here on
        _ingest(settings, [*STUDIES, {"submitter_id": "1.2.5", "study_modality": ["CT"]}])
        result = _build(settings, cohorts)
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        reader.stdin.write("\n")
        reader.stdin.flush()
        assert reader.stdout.readline().strip() == "2"  # the old file, whole, until it reconnects
    finally:
        reader.communicate(timeout=60)
    assert rows(settings, "select count(*) as n from marts.imaging_studies") == [{"n": 3}]
    assert rows(settings, "select count(*) as n from cohorts.only_ct") == [{"n": 2}]
    assert not (settings.warehouse_dir / NEXT_FILE).exists()


def test_a_failed_build_leaves_the_previous_warehouse_live(tmp_path: Path) -> None:
    settings, cohorts = _built(tmp_path)
    _ingest(settings, [*STUDIES, {"submitter_id": "1.2.3", "study_modality": ["MR"]}])  # a duplicate study key
    result = _build(settings, cohorts)
    assert result.exit_code == 1  # type: ignore[attr-defined]
    failed = settings.warehouse_dir / FAILED_FILE
    assert f"the failed build is in {failed}" in result.stderr  # type: ignore[attr-defined]
    assert ("fail: test unique_stg_guppy__imaging_studies_study_uid (models/staging/guppy/_guppy__models.yml): "
            "Got 1 result, configured to fail if != 0\n") in result.stderr  # type: ignore[attr-defined]
    assert "skipped because of the failures" in result.stderr  # type: ignore[attr-defined]
    assert rows(settings, "select count(*) as n from marts.imaging_studies") == [{"n": 2}]
    with duckdb.connect(str(failed), read_only=True) as con:  # kept for a look: the new raw rows are there
        assert con.execute("select count(*) from raw.guppy_imaging_study").fetchall() == [(3,)]


def test_a_failed_build_says_what_failed_what_was_skipped_and_where_the_log_is(tmp_path: Path) -> None:
    settings = resolve_settings(tmp_path / "w")
    cohorts = _cohorts(tmp_path, only_ct="CT")
    (cohorts / "broken.yml").write_text("index: imaging_study\nfilter: {'=': {study_modality: CT}}\n"
                                        "dicom_conditions: [kvpp > 80]\n")
    _ingest(settings, STUDIES)
    result = _build(settings, cohorts)
    assert result.exit_code == 1  # type: ignore[attr-defined]
    out, err = result.stdout, result.stderr  # type: ignore[attr-defined]
    assert "\x1b[" not in out + err and "ERROR creating" not in out  # dbt's own console lines stay in its log
    assert out.strip().splitlines()[-1].startswith("dbt build FAILED: ")
    assert ", 1 failed, 6 skipped" in out
    lines = err.strip().splitlines()
    assert lines[0] == "Runtime Error in model broken (generated/cohorts/broken.sql)"
    assert 'Referenced column "kvpp" not found' in lines[1] and lines[1].startswith("  ")
    query_line, caret = next((line, lines[i + 1]) for i, line in enumerate(lines) if "LINE " in line)
    assert caret.strip() == "^" and query_line[len(caret) - 1:].startswith("kvpp")
    log = settings.warehouse_dir / "dbt" / "logs" / "dbt.log"
    assert lines[-3:] == [
        "6 skipped because of the failures: 1 model, 5 tests",
        f"dbt's whole log: {log}",
        f"the previous warehouse stays live; the failed build is in {settings.warehouse_dir / FAILED_FILE}",
    ]
    assert "kvpp" in log.read_text() and "None" not in err


def test_deleted_cohorts_leave_the_schema(tmp_path: Path) -> None:
    settings = resolve_settings(tmp_path / "w")
    _ingest(settings, STUDIES)
    assert _build(settings, _cohorts(tmp_path, only_ct="CT", only_cr="CR")).exit_code == 0  # type: ignore[attr-defined]
    for args in ((), ("--select", "marts")):  # a fresh build, and one that starts from the live warehouse
        cohorts = _cohorts(tmp_path, only_cr="CR")
        result = _build(settings, cohorts, *args)
        assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
        built = rows(settings, "select table_name from information_schema.tables where table_schema = 'cohorts' "
                               "order by 1")
        assert [r["table_name"] for r in built] == ["only_cr", "only_cr__files"]
        manifest = run_cli("--warehouse", str(settings.warehouse_dir), "export", "manifest", "--cohort", "only_ct",
                           "--out", str(tmp_path / "m.json"))
        assert manifest.exit_code == 2 and "no cohort named 'only_ct'" in manifest.stderr
        _build(settings, _cohorts(tmp_path, only_ct="CT", only_cr="CR"))


def test_a_second_writer_is_one_line_naming_the_holder(tmp_path: Path) -> None:
    settings = resolve_settings(tmp_path / "w")
    _ingest(settings, STUDIES)
    with WriterLock(settings.warehouse_dir / LOCK_FILE):
        for command in (("build",), ("load",)):
            result = run_cli("--warehouse", str(settings.warehouse_dir), *command)
            assert result.exit_code == 2
            assert f"pid {os.getpid()}" in result.stderr and "is writing the warehouse" in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1
    assert run_cli("--warehouse", str(settings.warehouse_dir), "load").exit_code == 0


def test_load_keeps_the_marts_and_a_stale_wal_never_breaks_the_published_file(tmp_path: Path) -> None:
    settings, cohorts = _built(tmp_path)
    wal = database_path(settings).with_name(database_path(settings).name + ".wal")
    wal.write_bytes(b"\0garbage left by a crashed writer" * 100)
    _ingest(settings, [*STUDIES, {"submitter_id": "1.2.5", "study_modality": ["CT"]}])
    result = run_cli("--warehouse", str(settings.warehouse_dir), "load")
    assert result.exit_code == 0, result.output
    assert not wal.exists()
    assert rows(settings, "select count(*) as n from raw.guppy_imaging_study") == [{"n": 3}]
    assert rows(settings, "select count(*) as n from marts.imaging_studies") == [{"n": 2}]  # as built, not rebuilt


def test_ctrl_c_during_build_is_one_line_and_publishes_nothing(tmp_path: Path) -> None:
    settings, cohorts = _built(tmp_path)
    before = _published(settings)
    _ingest(settings, [*STUDIES, {"submitter_id": "1.2.5", "study_modality": ["CT"]}])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    build = subprocess.Popen(
        [sys.executable, "-m", "cohortdb", "--warehouse", str(settings.warehouse_dir), "--cohorts", str(cohorts),
         "build"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=_sigint_default)
    next_file = settings.warehouse_dir / NEXT_FILE
    deadline = time.monotonic() + 60
    while not next_file.exists() and build.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)  # inside the load or the dbt step
    build.send_signal(signal.SIGINT)
    stdout, stderr = build.communicate(timeout=120)
    assert build.returncode == 130, (stdout, stderr)
    assert stderr.strip() == "interrupted"
    assert _published(settings) == before
    assert not next_file.exists()
    assert rows(settings, "select count(*) as n from marts.imaging_studies") == [{"n": 2}]
    assert _build(settings, cohorts).exit_code == 0  # type: ignore[attr-defined]
    assert rows(settings, "select count(*) as n from marts.imaging_studies") == [{"n": 3}]


def test_kill_9_during_load_and_build_never_breaks_the_warehouse(tmp_path: Path) -> None:
    """Five kills of each at seeded random moments: the live warehouse stays queryable with
    the old or the new data, and the next run completes with no duplicates."""
    settings, cohorts = _built(tmp_path)
    _ingest(settings, [*STUDIES, {"submitter_id": "1.2.5", "study_modality": ["CT"]}])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    rng = random.Random(11)
    for command in ("load", "build"):
        for _ in range(5):
            process = subprocess.Popen(
                [sys.executable, "-m", "cohortdb", "--warehouse", str(settings.warehouse_dir),
                 "--cohorts", str(cohorts), command], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
            time.sleep(rng.uniform(0.2, 4.0 if command == "build" else 1.5))
            process.kill()
            process.wait(timeout=60)
            assert rows(settings, "select count(*) as n from raw.guppy_imaging_study")[0]["n"] in (2, 3)
            assert rows(settings, "select count(*) as n from marts.imaging_studies")[0]["n"] in (2, 3)
    result = _build(settings, cohorts)
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert rows(settings, "select count(*) as n, count(distinct study_uid) as k from marts.imaging_studies") == [
        {"n": 3, "k": 3}]
    assert not (settings.warehouse_dir / NEXT_FILE).exists()


def test_a_selection_matching_nothing_is_one_line_and_publishes_nothing(tmp_path: Path) -> None:
    settings, cohorts = _built(tmp_path)
    before = _published(settings)
    result = _build(settings, cohorts, "--select", "nosuchmodel")
    assert result.exit_code == 2 and "--select nosuchmodel matches no model" in result.stderr  # type: ignore[attr-defined]
    assert _published(settings) == before
    assert not (settings.warehouse_dir / NEXT_FILE).exists()


def test_a_cohort_dbt_cannot_compile_is_one_line_that_says_what_and_where(tmp_path: Path) -> None:
    settings = resolve_settings(tmp_path / "w")
    cohorts = _cohorts(tmp_path, only_ct="CT")
    (cohorts / "jinja.yml").write_text("index: imaging_study\nfilter: {}\ndicom_conditions: ['kvp > {{ 1']\n")
    _ingest(settings, STUDIES)
    result = _build(settings, cohorts)
    assert result.exit_code == 2  # type: ignore[attr-defined]
    error = result.stderr  # type: ignore[attr-defined]
    assert error.startswith("error: dbt could not run: Compilation Error in model jinja "
                            "(generated/cohorts/jinja.sql): unexpected ')'")
    assert "kvp > {{ 1)" in error  # the line dbt could not compile
    assert error.rstrip().endswith(f"(dbt's log: {settings.warehouse_dir / 'dbt' / 'logs' / 'dbt.log'})")
    assert not database_path(settings).exists()
