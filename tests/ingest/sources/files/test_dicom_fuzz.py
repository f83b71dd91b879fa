"""Faults: a seeded fuzz corpus never stops the ingest; every source is one instance or error row.

Also the walk's faults (symbolic link loops, names that are not UTF-8, directories that
cannot be listed) and a failing source's rows being dropped from its batch.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dicom_fuzz import crashers, write_corpus

from ingest.dicom.parts import BatchParts
from ingest.lake import part_files
from ingest.settings import Settings, resolve_settings
from ingest.sources.files import batch
from ingest.sources.files.ingest import ingest_dicom
from ingest.sources.files.read import escape_path, unescape_path

REPO = Path(__file__).resolve().parents[4]
INTERNAL = ("object has no attribute", "embedded null", "Expected bytes", "not subscriptable", "Traceback",
            "unsupported operand", "maximum recursion")


def _table(settings: Settings, name: str) -> pa.Table:
    files = part_files(settings.dicom_lake / name)
    return pa.concat_tables(pq.read_table(f) for f in files) if files else pa.table({})


def _cli(settings: Settings, path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "cohortdb", "--warehouse", str(settings.warehouse_dir), "ingest", "dicom",
         "--workers", "2", str(path)],
        capture_output=True, text=True, timeout=300, env=env,
    )


def test_fuzzed_files_never_stop_the_ingest(tmp_path: Path) -> None:
    root = tmp_path / "fuzz"
    root.mkdir()
    kinds = write_corpus(root, 400, seed=11)
    settings = resolve_settings(tmp_path / "w")
    done = _cli(settings, root)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    instances, errors = _table(settings, "instances"), _table(settings, "errors")
    severity = errors["severity"].to_pylist()
    failed = [p for p, level in zip(errors["source_path"].to_pylist(), severity, strict=True) if level == "error"]
    paths = instances["source_path"].to_pylist() + failed
    assert sorted(paths) == sorted(str(root / name) for name in kinds)  # each source exactly once
    warned = {p for p, level in zip(errors["source_path"].to_pylist(), severity, strict=True) if level == "warning"}
    truncated = {r["source_path"] for r in instances.select(["source_path", "truncated"]).to_pylist() if r["truncated"]}
    assert warned == truncated  # a warning row for each instance kept in part, and no other
    for message in errors["message"].to_pylist():
        assert not any(text in message for text in INTERNAL), message
    by_name = dict(zip([Path(p).name for p in errors["source_path"].to_pylist()],
                       errors["error_type"].to_pylist(), strict=True))
    assert by_name["deep_nesting.dcm"] == "too_deep"
    assert "private_creator_multi.dcm" not in by_name and "charset_nul.dcm" not in by_name
    again = _cli(settings, root)
    assert again.returncode == 0 and "Traceback" not in again.stderr
    assert _table(settings, "instances").sort_by("file_id").equals(instances.sort_by("file_id"))
    assert _table(settings, "errors").num_rows == errors.num_rows


def test_crashers_ingest(settings: Settings, tmp_path: Path) -> None:
    tmp_path = tmp_path / "src"
    tmp_path.mkdir()
    for name, data in crashers().items():
        (tmp_path / name).write_bytes(data)
    ingest_dicom(settings, [tmp_path], workers=1)
    errors = _table(settings, "errors").to_pylist()
    assert [(Path(r["source_path"]).name, r["error_type"]) for r in errors] == [("deep_nesting.dcm", "too_deep")]
    elements = _table(settings, "elements")
    creators = elements.filter(pa.compute.equal(elements["tag"], "00091001"))["private_creator"].to_pylist()
    assert creators == ["ACME\\OTHER"]


def test_nul_in_charset_on_the_pydicom_path_falls_back() -> None:
    import io

    from ingest.dicom.read import pydicom_header

    data = crashers()["charset_nul.dcm"]
    header = pydicom_header(io.BytesIO(data), len(data))
    assert "Doe^John" in [v for values in header.rows.values for v in values]


def test_zeros_are_not_dicom_quickly(settings: Settings, tmp_path: Path) -> None:
    tmp_path = tmp_path / "src"
    tmp_path.mkdir()
    (tmp_path / "zeros.dcm").write_bytes(bytes(8 << 20))
    started = time.perf_counter()
    ingest_dicom(settings, [tmp_path], workers=1)
    assert time.perf_counter() - started < 10
    assert _table(settings, "errors")["error_type"].to_pylist() == ["not_dicom"]
    assert _table(settings, "instances").num_rows == 0


def test_a_failing_source_is_an_error_row_and_its_rows_are_dropped(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pydicom.data import get_testdata_file

    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    tmp_path = tmp_path / "src"
    tmp_path.mkdir()
    for name in ("a.dcm", "b.dcm", "c.dcm"):
        (tmp_path / name).write_bytes(data)
    original = BatchParts.add_instance

    def add_instance(self: BatchParts, header: object, **kwargs: object) -> None:
        original(self, header, **kwargs)  # type: ignore[arg-type]
        if str(kwargs["source_path"]).endswith("b.dcm"):
            raise AttributeError("'Sequence' object has no attribute 'hex'")

    monkeypatch.setattr(batch.BatchParts, "add_instance", add_instance)
    ingest_dicom(settings, [tmp_path], workers=1)
    errors = _table(settings, "errors").to_pylist()
    assert [(Path(r["source_path"]).name, r["error_type"]) for r in errors] == [("b.dcm", "reader_failed")]
    assert "no attribute" not in errors[0]["message"]
    instances = _table(settings, "instances")
    assert sorted(Path(p).name for p in instances["source_path"].to_pylist()) == ["a.dcm", "c.dcm"]
    assert set(_table(settings, "elements")["file_id"].to_pylist()) == set(instances["file_id"].to_pylist())


def test_element_rows_arrow_rejects_drop_only_their_instance(tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    from ingest.dicom.read import read_bytes

    parts = BatchParts(tmp_path, dt.datetime.now(dt.UTC))
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    for name in ("a", "b"):
        parts.begin_source()
        header = read_bytes(data, parts.nodes)
        if name == "b":
            header.rows.creator_of[0] = object()  # type: ignore[assignment]
        parts.add_instance(header, source_path=name, member=None, mtime=None)
        parts.end_source()
    counts = parts.close()
    assert (counts.n_instances, counts.n_errors) == (1, 1)
    assert pq.read_table(tmp_path / "errors.parquet")["error_type"].to_pylist() == ["reader_failed"]


def test_escape_path_is_lossless() -> None:
    for raw in (b"/d/plain.dcm", b"/d/caf\xc3\xa9 50%.dcm", b"/d/bad\xff%41\xfe.dcm"):
        path = os.fsdecode(raw)
        escaped = escape_path(path)
        escaped.encode()
        assert os.fsencode(unescape_path(escaped) if escaped != path else path) == raw
    assert escape_path(os.fsdecode(b"/d/bad\xff%.dcm")) == "/d/bad%FF%25.dcm"


def test_walk_faults_are_error_rows(settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from pydicom.data import get_testdata_file

    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    root = tmp_path / "tree"
    (root / "locked").mkdir(parents=True)
    (root / "ok.dcm").write_bytes(data)
    (root / "locked" / "hidden.dcm").write_bytes(data)
    (root / "loop").symlink_to(root / "loop")
    (root / "l1").symlink_to(root / "l2")
    (root / "l2").symlink_to(root / "l1")
    bad = os.fsencode(root) + b"/bad\xffname.dcm"
    with open(bad, "wb") as fp:
        fp.write(data)
    os.mkdir(os.fsencode(root) + b"/dir\xfe")
    locked = str(root / "locked")
    if os.geteuid() == 0:  # root lists any directory: simulate the refusal
        scandir = os.scandir

        def refusing(path: str = ".") -> object:
            if isinstance(path, str) and path == locked:
                raise PermissionError(13, "Permission denied", locked)
            return scandir(path)

        monkeypatch.setattr(os, "scandir", refusing)
    else:
        os.chmod(locked, 0)
    try:
        ingest_dicom(settings, [root], workers=1)
        ingest_dicom(settings, [root], workers=1)  # a re-run (remembered listings) is the same
    finally:
        os.chmod(locked, 0o755)
    errors = {Path(r["source_path"]).name: (r["error_type"], r["message"])
              for r in _table(settings, "errors").to_pylist()}
    assert errors["locked"] == ("unreadable", "directory cannot be listed (Permission denied)")
    assert errors["loop"][0] == errors["l1"][0] == errors["l2"][0] == "broken_symlink"
    assert "loop" in errors["loop"][1]
    assert errors["bad%FFname.dcm"][0] == errors["dir%FE"][0] == "bad_name"
    assert len(errors) == 6
    assert [Path(p).name for p in _table(settings, "instances")["source_path"].to_pylist()] == ["ok.dcm"]


def test_a_given_path_that_is_not_utf8_is_an_error_row(settings: Settings, tmp_path: Path) -> None:
    from pydicom.data import get_testdata_file

    root = os.fsencode(tmp_path) + b"/src\xff"
    os.mkdir(root)
    with open(root + b"/a.dcm", "wb") as fp:
        fp.write(Path(get_testdata_file("CT_small.dcm")).read_bytes())
    ingest_dicom(settings, [os.fsdecode(root)], workers=1)
    errors = _table(settings, "errors").to_pylist()
    assert [(r["source_path"], r["error_type"]) for r in errors] == [(f"{tmp_path}/src%FF", "bad_name")]
