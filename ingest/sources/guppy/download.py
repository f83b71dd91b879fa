"""Downloading data files through the SDK's DRS client (``gen3 drs-pull``'s code).

The SDK resolves each object at ``https://<host>/ga4gh/drs/v1/objects/<id>``,
asks fence for a signed URL and streams the file to ``out_dir/<name>``.
MIDRC ships one zip per series; zips are unpacked here (into a directory named
after the zip, path traversal refused) unless the caller keeps them.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

from ingest.errors import UserError, requires
from ingest.sources.guppy.client import GEN3_INSTALL, GuppyClient


def read_object_ids(path: Path) -> list[str]:
    """Object ids from a file: a JSON array of ids, or one id a line (``#`` comments).

    Raises:
        UserError: missing file, or no ids in it.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"object-ids file not found: {path}") from None
    if text.lstrip().startswith("["):
        try:
            ids = json.loads(text)
        except json.JSONDecodeError as error:
            raise UserError(f"{path} is not valid JSON: {error.msg}") from None
        if not all(isinstance(i, str) for i in ids):
            raise UserError(f"{path} must be a JSON array of object-id strings")
    else:
        ids = [line.strip() for line in text.splitlines()
               if line.strip() and not line.lstrip().startswith("#")]
    if not ids:
        raise UserError(f"no object ids in {path}")
    return list(dict.fromkeys(ids))


@contextlib.contextmanager
def _sdk_quiet() -> Iterator[None]:
    """Silence the SDK: it prints progress and logs each failure (a traceback on the stream its
    loggers were made with); the caller reports failures itself, one line each."""
    loggers = [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)
               if name.split(".")[0] in ("gen3", "cdislogging")]
    disabled = [logger.disabled for logger in loggers]
    for logger in loggers:
        logger.disabled = True
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        for logger, was in zip(loggers, disabled, strict=True):
            logger.disabled = was


def download_objects(
    client: GuppyClient,
    object_ids: list[str],
    out_dir: Path,
    *,
    unzip: bool,
    advance: Callable[[str], None],
) -> tuple[list[Path], list[str]]:
    """Download every object into ``out_dir``; returns (paths written, failures).

    ``advance`` is called with each object id once it is done (for progress).
    Failures are ``"<id>: <reason>"`` lines; the other files are still fetched.
    """
    with requires("gen3", GEN3_INSTALL):
        from gen3.tools.download.drs_download import Downloadable, DownloadManager

    host = urlparse(client.endpoint).netloc
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = [Downloadable(object_id=object_id) for object_id in object_ids]
    with _sdk_quiet():
        manager = DownloadManager(hostname=host, auth=client.auth, download_list=entries,
                                  show_progress=False, commons_url=host)
    written: list[Path] = []
    failures: list[str] = []
    for entry in entries:
        if entry.file_name is None:
            failures.append(f"{entry.object_id}: not found at {host}")
            advance(entry.object_id)
            continue
        with _sdk_quiet():
            status = manager.download([entry], save_directory=str(out_dir),
                                      show_progress=False, unpack_packages=False)
        result = status[entry.object_id]
        if result.status != "downloaded":
            code = f" (HTTP {result.status_code})" if result.status_code else ""
            failures.append(f"{entry.object_id}: {result.status}{code}")
        else:
            path = out_dir / entry.file_name
            written.append(unpack(path) if unzip and path.suffix == ".zip" else path)
        advance(entry.object_id)
    return written, failures


def unpack(archive: Path) -> Path:
    """Extract ``x.zip`` into directory ``x/`` beside it and delete the zip.

    Raises:
        UserError: not a zip, or a member would land outside the directory.
    """
    target = archive.with_suffix("")
    try:
        with zipfile.ZipFile(archive) as package:
            root = target.resolve()
            for member in package.namelist():
                if not (root / member).resolve().is_relative_to(root):
                    raise UserError(f"{archive} has a member outside the archive: {member}")
            package.extractall(target)
    except zipfile.BadZipFile:
        raise UserError(f"{archive} is not a valid zip file") from None
    archive.unlink()
    return target
