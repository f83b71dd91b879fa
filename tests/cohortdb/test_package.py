"""`pip install .`: the wheel ships the dbt project, and the installed `cohortdb` (no checkout,
no editable install) runs the demo and a build from an unrelated directory."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import duckdb
import pytest

ROOT = Path(__file__).resolve().parents[2]
PROJECT_PATHS = ("dbt_project.yml", "profiles.yml", "models/", "macros/", "seeds/", "data-tests/", "cohorts/")


def _run(args: list[str | Path], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run a command; fail with its output unless it exits 0."""
    command = [str(a) for a in args]
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, (
        f"{' '.join(command)} exited {result.returncode}\n"
        f"--- stdout (end)\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr}"
    )
    return result


@dataclass(frozen=True)
class Wheel:
    path: Path
    sources: list[str]
    """The files it was built from, relative to the checkout."""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Wheel:
    """The wheel, built (as `pip install .` would) from a copy of the checkout: an in-place
    build would leave build/ in the checkout, and a stale build/lib leaks into later wheels."""
    assert shutil.which("git") is not None and (ROOT / ".git").exists(), (
        "the wheel is built from the files git tracks: run the tests in a git clone, with git installed "
        "(apt-get install git)")
    assert int(version("setuptools").split(".")[0]) >= 77, "the build needs setuptools>=77: pip install -e '.[test]'"
    listed = _run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT).stdout
    sources = sorted(name for name in set(listed.split("\0")) if name and (ROOT / name).is_file())
    source = tmp_path_factory.mktemp("source")
    for name in sources:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    # what a working checkout also has, and a wheel must not carry
    for junk in ("macros/__pycache__/stale.pyc", "models/.stale.sql"):
        (source / junk).parent.mkdir(parents=True, exist_ok=True)
        (source / junk).write_text("-- not shipped\n")
    out = tmp_path_factory.mktemp("wheel")
    env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", out, source], cwd=out, env=env)
    (path,) = out.glob("cohortdb-*.whl")
    return Wheel(path, sources)


def test_wheel_ships_the_dbt_project_as_package_data(wheel: Wheel) -> None:
    with zipfile.ZipFile(wheel.path) as archive:
        names = archive.namelist()
    assert {n.split("/")[0] for n in names if ".dist-info/" not in n} == {"cohortdb", "ingest", "dashboards"}
    shipped = sorted(n.removeprefix("cohortdb/_project/") for n in names if n.startswith("cohortdb/_project/"))
    assert shipped == [name for name in wheel.sources if name.startswith(PROJECT_PATHS)]
    assert "dbt_project.yml" in shipped and "seeds/_seeds.yml" in shipped


def test_a_plain_install_brings_the_gen3_sdk(wheel: Wheel) -> None:
    """`pip install cohortdb` (and `make demo`) can query a live commons and download: the SDK is no extra."""
    with zipfile.ZipFile(wheel.path) as archive:
        [metadata] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        requires = [line.split(":", 1)[1].strip() for line in archive.read(metadata).decode().splitlines()
                    if line.startswith("Requires-Dist:")]
    core = {re.split(r"[<>=!; ]", r)[0].lower() for r in requires if "extra ==" not in r}
    assert {"gen3", "graphql-core", "orjson", "dbt-core"} & core == {"gen3", "graphql-core", "orjson"}


def _files(directory: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(directory).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in directory.rglob("*") if p.is_file()
    }


@pytest.mark.slow
def test_installed_wheel_runs_the_demo_and_a_build_from_anywhere(wheel: Wheel, tmp_path: Path) -> None:
    """A fresh venv with the wheel; the dependencies are this environment's."""
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    # installed before the dependencies are visible, so pip sees no other cohortdb
    pip_env = {**os.environ, "PIP_NO_CACHE_DIR": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel.path],
         cwd=tmp_path, env=pip_env)
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], cwd=tmp_path)
                .stdout.strip())
    # This environment's site-packages, after the venv's own. The .pth files in a directory
    # added by a .pth file are not run, so an editable cohortdb here stays invisible there.
    dependencies = [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    (site / "test_dependencies.pth").write_text("".join(f"{p}\n" for p in dependencies))
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME") and not k.startswith(("COHORTDB_", "DBT_"))}
    work = tmp_path / "elsewhere"
    work.mkdir()

    probe = "import cohortdb, cohortdb.project as p; print(cohortdb.__file__); print(p.PROJECT_DIR)"
    where = _run([python, "-c", probe], cwd=work, env=env).stdout.split("\n")
    assert Path(where[0]) == site / "cohortdb" / "__init__.py"
    project = Path(where[1])
    assert project == site / "cohortdb" / "_project"
    before = _files(project)

    cohortdb = venv / "bin" / "cohortdb"
    demo = _run([cohortdb, "--warehouse", "W", "demo"], cwd=work, env=env).stdout
    assert "dbt build ok" in demo
    assert "-- Studies by source" in demo and "in_guppy" in demo and "(failed:" not in demo
    # the printed next step runs as printed, from where the demo ran (cohortdb is not on the PATH)
    [next_step] = [line.removeprefix("Next: ") for line in demo.splitlines() if line.startswith("Next: ")]
    assert next_step.startswith(shlex.quote(str(cohortdb)))
    pasted = subprocess.run(next_step, shell=True, cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert pasted.returncode == 0 and pasted.stdout.strip(), pasted.stderr
    build = _run([cohortdb, "--warehouse", "W", "build"], cwd=work, env=env).stdout
    assert "loaded into" in build and "dbt build ok" in build

    warehouse = work / "W"
    assert [p.name for p in work.iterdir()] == ["W"]
    with duckdb.connect(str(warehouse / "warehouse.duckdb"), read_only=True) as con:
        cohorts = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'cohorts'").fetchall()}
        assert con.execute("select count(*) from marts.imaging_studies").fetchone()[0] > 0  # type: ignore[index]
    assert {p.stem for p in (project / "cohorts").glob("*.yml")} <= cohorts
    assert (warehouse / "dbt" / "target" / "manifest.json").is_file()  # dbt's artefacts: the warehouse's
    after = _files(project)
    assert after == before, "written into the installed package"
