"""Bad input: one error row each, the run goes on, a summary at the end, no traceback."""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydicom.data import get_testdata_file

from ingest.lake import part_files
from ingest.settings import Settings
from ingest.sources.files.ingest import ingest_dicom

ROOT = Path(__file__).resolve().parents[4]

CT = Path(get_testdata_file("CT_small.dcm"))
NO_META = Path(get_testdata_file("ExplVR_LitEndNoMeta.dcm"))  # starts with group 0008, no preamble


def _errors(settings: Settings) -> dict[str, tuple[str | None, str, str]]:
    """Errors by file name (plus member): (member, error_type, message)."""
    files = part_files(settings.dicom_lake / "errors")
    table = pa.concat_tables(pq.read_table(f) for f in files) if files else pa.table({})
    return {
        Path(r["source_path"]).name + (f"!{r['source_member']}" if r["source_member"] else ""):
        (r["source_member"], r["error_type"], r["message"])
        for r in table.to_pylist()
    }


def _instances(settings: Settings) -> list[dict]:
    return pa.concat_tables(pq.read_table(f) for f in part_files(settings.dicom_lake / "instances")).to_pylist()


@pytest.fixture
def bad_dir(tmp_path: Path) -> Path:
    root = tmp_path / "bad"
    root.mkdir()
    data = CT.read_bytes()
    (root / "good.dcm").write_bytes(data)
    (root / "empty.dcm").write_bytes(b"")
    for offset in (100, 131, 140, 600, 3000, 6200, 7300):
        (root / f"cut_{offset}.dcm").write_bytes(data[:offset])
    (root / "text.dcm").write_text("this is not a DICOM file\n" * 20)
    (root / "image.dcm").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    (root / "random.dcm").write_bytes(random.Random(0).randbytes(4096))
    (root / "no_preamble.dcm").write_bytes(data[132:])  # file meta first: no preamble, no DICM
    (root / "no_meta.dcm").write_bytes(NO_META.read_bytes())
    with zipfile.ZipFile(root / "series.zip", "w") as archive:
        archive.writestr("a.dcm", data)
        archive.writestr("notes.txt", "not dicom")
        archive.writestr("dir/", "")
    (root / "corrupt.zip").write_bytes((root / "series.zip").read_bytes()[:200])
    (root / "broken_link.dcm").symlink_to(root / "missing-target.dcm")
    unreadable = root / "unreadable.dcm"
    if os.geteuid() == 0:  # root reads any mode; a read that fails with EIO instead
        unreadable.symlink_to("/proc/self/mem")
    else:
        unreadable.write_bytes(data)
        unreadable.chmod(0)
    return root


def test_every_bad_source_is_one_error_row_and_good_ones_land(settings: Settings, bad_dir: Path) -> None:
    summary = ingest_dicom(settings, [bad_dir], workers=1)
    errors = _errors(settings)
    kinds = {name: kind for name, (_, kind, _) in errors.items()}
    assert kinds["empty.dcm"] == "empty"
    for name in ("text.dcm", "image.dcm", "random.dcm"):
        assert kinds[name] == "not_dicom", name
    for offset in (140, 600, 3000, 6200):
        assert kinds[f"cut_{offset}.dcm"] in {"truncated", "invalid"}, offset
    assert kinds["cut_100.dcm"] == "not_dicom" and kinds["cut_131.dcm"] == "not_dicom"
    assert kinds["cut_7300.dcm"] == "truncated"  # inside the pixel data (6300–39068)
    assert kinds["series.zip!notes.txt"] == "not_dicom"
    assert kinds["corrupt.zip"] == "bad_zip"
    assert kinds["broken_link.dcm"] == "broken_symlink"
    assert kinds["unreadable.dcm"] == "unreadable"
    assert all("\n" not in message and message for _, _, message in errors.values())

    landed = {
        Path(r["source_path"]).name + (f"!{r['source_member']}" if r["source_member"] else "")
        for r in _instances(settings)
    }
    cut = {"cut_600.dcm", "cut_3000.dcm", "cut_6200.dcm", "cut_7300.dcm"}  # elements before the cut kept
    assert landed == {"good.dcm", "no_preamble.dcm", "no_meta.dcm", "series.zip!a.dcm"} | cut
    assert summary.n_instances == 8 and summary.n_errors + summary.n_warnings == len(errors)
    assert summary.n_warnings == 4  # the cut files: instances read in part
    assert landed & set(errors) == cut
    truncated = {Path(r["source_path"]).name: r["truncated_at"] for r in _instances(settings) if r["truncated"]}
    assert set(truncated) == cut and truncated["cut_7300.dcm"] < 7300
    assert all(0 < at <= int(name[4:-4]) for name, at in truncated.items())
    member = next(r for r in _instances(settings) if r["source_member"] == "a.dcm")
    assert member["file_size"] == len(CT.read_bytes()) and member["modality"] == "CT"


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cohortdb", *args], cwd=cwd, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(ROOT)},  # this tree's code, not the editable install's
    )


def test_cli_summarises_and_strict_fails(tmp_path: Path, bad_dir: Path) -> None:
    done = _cli("--warehouse", str(tmp_path / "w"), "ingest", "dicom", str(bad_dir), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "8 instances (4 truncated)," in done.stdout and "errors" in done.stdout
    assert "Traceback" not in done.stderr
    strict = _cli("--warehouse", str(tmp_path / "w2"), "ingest", "dicom", "--strict", str(bad_dir), cwd=tmp_path)
    assert strict.returncode == 1


def test_strict_fails_on_errors_not_on_a_truncated_instance(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    shutil.copy(get_testdata_file("MR_truncated.dcm"), source)
    strict = _cli("--warehouse", str(tmp_path / "w"), "ingest", "dicom", "--strict", str(source), cwd=tmp_path)
    assert strict.returncode == 0, strict.stderr
    assert "1 instances (1 truncated), 0 errors" in strict.stdout and "for the 1 warning\n" in strict.stderr
    (source / "notes.txt").write_text("not DICOM")
    strict = _cli("--warehouse", str(tmp_path / "w"), "ingest", "dicom", "--strict", str(source), cwd=tmp_path)
    assert strict.returncode == 1 and "for the 1 error\n" in strict.stderr


def test_missing_path_is_one_line_and_nonzero(tmp_path: Path) -> None:
    done = _cli("--warehouse", str(tmp_path / "w"), "ingest", "dicom", str(tmp_path / "nope"), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "no such file or directory" in done.stderr and "Traceback" not in done.stderr
