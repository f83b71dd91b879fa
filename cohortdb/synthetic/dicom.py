"""A realistic synthetic DICOM corpus: MIDRC-like CR/DX chest films, CT and MR series.

Pure pydicom, no network. Headers follow a real MIDRC chest DX file (CTP
de-identification, GDCM file meta, a 4-item De-identification Method Code
Sequence, the ``CTP`` private block in group 0013) and common CT/MR vendor
headers with nested and private sequences. Pixel data is a short OW stub: the
header's Rows/Columns stay realistic, the ingest never reads pixels.

Everything is derived from ``seed``: the corpus plan from ``random.Random(seed)``,
each series' values from its own ``random.Random(f"{seed}|{series_uid}")`` and
every UID from a SHA-512 of its inputs, so output is byte-identical for a seed
whatever the number of worker processes.

Modules: :mod:`~cohortdb.synthetic.dicom_plan` (who/which studies/series/UIDs),
:mod:`~cohortdb.synthetic.dicom_headers` (datasets), :mod:`~cohortdb.synthetic.dicom_values`
(value pools); this one encodes and writes.

Layout (as MIDRC downloads): ``<out>/<patient_id>/<study_uid>/<series_uid>/<sop_uid>.dcm``;
with ``zip_series=True`` one zip per series, ``<out>/<patient_id>/<series_uid>.zip``
holding ``<sop_uid>.dcm`` members.
"""

from __future__ import annotations

import multiprocessing
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import correct_ambiguous_vr, write_data_element, write_file_meta_info
from pydicom.multival import MultiValue

from cohortdb.synthetic.dicom_headers import generate_dataset, series_datasets
from cohortdb.synthetic.dicom_plan import KINDS, SeriesPlan, plan_corpus

__all__ = ["KINDS", "SeriesEncoder", "generate_corpus", "generate_dataset", "plan_corpus",
           "series_bytes", "series_datasets", "write_series"]

ZIP_DATE_TIME = (1980, 1, 1, 0, 0, 0)
"""Fixed member timestamp so zips are byte-identical across runs."""


UNSHARED_VRS = frozenset({"SQ", "OB", "OW", "OD", "OF", "OL", "OV", "UN"})
"""Encoded afresh per series: sequences (nested state) and binary values (large, random)."""


class SeriesEncoder:
    """Encodes the instances of one series to Part 10 bytes, re-encoding only what changed.

    Each top-level element is encoded once with pydicom's own element writer and
    reused while the element still holds the same value object; assigning a value
    (``ds.InstanceNumber = 2``) stores a new object, which is encoded afresh.
    Plain (non-sequence, non-binary) elements are also shared across series by
    value, since most of a header repeats from series to series.
    Output equals ``ds.save_as(..., enforce_file_format=True)`` byte for byte (the
    tests check this) at a fraction of its cost. Values must be assigned, not
    mutated in place (no ``ds.Sequence[0].X = ...`` between instances).
    """

    shared: dict[tuple[Any, ...], bytes] = {}
    """Encoded plain elements by (tag, VR, encodings, value), shared across series."""
    max_shared = 20_000

    def __init__(self) -> None:
        self._encoded: dict[int, tuple[Any, bytes]] = {}
        self._encodings: list[str] | None = None

    def encode(self, ds: Dataset) -> bytes:
        """Preamble, file meta and dataset of ``ds`` (Explicit VR Little Endian)."""
        if self._encodings is None:
            correct_ambiguous_vr(ds, is_little_endian=True)
            self._encodings = convert_encodings(ds.get("SpecificCharacterSet", "ISO_IR 6"))
        buffer = DicomBytesIO()
        buffer.is_little_endian, buffer.is_implicit_VR = True, False
        buffer.write(b"\x00" * 128 + b"DICM")
        write_file_meta_info(buffer, ds.file_meta, enforce_standard=True)
        parts = [buffer.getvalue()]
        for tag in sorted(ds._dict):
            element = ds[tag]
            cached = self._encoded.get(tag)
            if cached is None or cached[0] is not element.value:
                cached = (element.value, self._encode_element(element))
                self._encoded[tag] = cached
            parts.append(cached[1])
        return b"".join(parts)

    def _encode_element(self, element: DataElement) -> bytes:
        assert self._encodings is not None
        if element.VR in UNSHARED_VRS:
            return self._write_element(element)
        value = element.value
        if isinstance(value, MultiValue | list):
            value_key: Any = tuple((type(item).__name__, str(item)) for item in value)
        else:
            value_key = (type(value).__name__, str(value))
        key = (element.tag, element.VR, tuple(self._encodings), value_key)
        encoded = self.shared.get(key)
        if encoded is None:
            if len(self.shared) >= self.max_shared:
                self.shared.clear()
            encoded = self.shared[key] = self._write_element(element)
        return encoded

    def _write_element(self, element: DataElement) -> bytes:
        buffer = DicomBytesIO()
        buffer.is_little_endian, buffer.is_implicit_VR = True, False
        assert self._encodings is not None
        write_data_element(buffer, element, self._encodings)
        return buffer.getvalue()


def series_bytes(plan: SeriesPlan, pixel_bytes: int = 2048) -> Iterator[tuple[str, bytes]]:
    """(SOP Instance UID, Part 10 file bytes) of each instance of ``plan``'s series."""
    encoder = SeriesEncoder()
    for ds in series_datasets(plan, pixel_bytes):
        yield ds.SOPInstanceUID, encoder.encode(ds)


def write_series(plan: SeriesPlan, out_dir: Path, *, zip_series: bool = False,
                 pixel_bytes: int = 2048) -> list[Path]:
    """Write one series; returns the .dcm paths, or the one zip path when ``zip_series``."""
    patient_dir = out_dir / plan.patient.patient_id
    if zip_series:
        patient_dir.mkdir(parents=True, exist_ok=True)
        zip_path = patient_dir / f"{plan.series_uid}.zip"
        with zipfile.ZipFile(zip_path, "w", zipfile.ZIP_DEFLATED) as archive:
            for sop_uid, data in series_bytes(plan, pixel_bytes):
                member = zipfile.ZipInfo(f"{sop_uid}.dcm", ZIP_DATE_TIME)
                member.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(member, data)
        return [zip_path]
    series_dir = patient_dir / plan.study_uid / plan.series_uid
    series_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for sop_uid, data in series_bytes(plan, pixel_bytes):
        path = series_dir / f"{sop_uid}.dcm"
        path.write_bytes(data)
        paths.append(path)
    return paths


def _write_series_task(task: tuple[SeriesPlan, Path, bool, int]) -> list[Path]:
    plan, out_dir, zip_series, pixel_bytes = task
    return write_series(plan, out_dir, zip_series=zip_series, pixel_bytes=pixel_bytes)


def generate_corpus(out_dir: Path, *, n_crdx: int = 200, n_ct_series: int = 2,
                    ct_slices: int = 50, n_mr_series: int = 1, mr_slices: int = 20,
                    seed: int = 0, zip_series: bool = False, pixel_bytes: int = 2048,
                    workers: int | None = None) -> list[Path]:
    """Write a synthetic corpus under ``out_dir``; returns the files written, in plan order.

    Args:
        n_crdx: CR/DX chest instances (files) in total.
        n_ct_series / ct_slices: CT series and slices (files) per CT series.
        n_mr_series / mr_slices: MR series and slices per MR series.
        seed: same seed → byte-identical files.
        zip_series: one ``<patient_id>/<series_uid>.zip`` per series instead of .dcm files.
        pixel_bytes: length of each instance's OW pixel data stub in bytes (rounded up to even).
        workers: processes writing series in parallel; default ``os.cpu_count()``;
            1 writes in this process.
    """
    out_dir = Path(out_dir)
    plans = plan_corpus(n_crdx=n_crdx, n_ct_series=n_ct_series, ct_slices=ct_slices,
                        n_mr_series=n_mr_series, mr_slices=mr_slices, seed=seed)
    tasks = [(plan, out_dir, zip_series, pixel_bytes) for plan in plans]
    workers = workers or os.cpu_count() or 1
    if workers == 1 or len(tasks) < 2:
        results = [_write_series_task(task) for task in tasks]
    else:
        # spawn, not fork: forking a threaded parent warns (an error under pytest's config).
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            results = pool.map(_write_series_task, tasks,
                               chunksize=max(1, len(tasks) // (workers * 8)))
    return [path for paths in results for path in paths]
