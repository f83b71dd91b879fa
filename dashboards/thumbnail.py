"""A small preview of an instance's image: pydicom decodes the pixel data of a local file
(or zip member), the VOI LUT or window of the header (else the value range) maps it to
8 bits. Anything that cannot be shown becomes a note saying why."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAX_BYTES = 256 * 1024 * 1024
"""Files (or zip members) larger than this are not read for a preview."""
MAX_SIDE = 512


@dataclass(frozen=True)
class Preview:
    """An 8-bit image (``image``, H×W or H×W×3) or, when there is none, ``note`` says why."""

    image: np.ndarray | None
    note: str


def _open(source_path: str, source_member: str | None) -> io.BytesIO | Path:
    path = Path(source_path)
    if not path.is_file():
        raise FileNotFoundError(source_path)
    if source_member is None:
        if path.stat().st_size > MAX_BYTES:
            raise ValueError("the file is too large to preview")
        return path
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(source_member)
        if info.file_size > MAX_BYTES:
            raise ValueError("the zip member is too large to preview")
        return io.BytesIO(archive.read(info))


def _to_8bit(pixels: np.ndarray, dataset: object) -> np.ndarray:
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    if pixels.ndim == 3 and pixels.shape[-1] in (3, 4) and \
            getattr(dataset, "SamplesPerPixel", 1) > 1:  # colour: stretch each image as a whole
        values = pixels.astype(np.float64)
    else:
        values = apply_voi_lut(apply_modality_lut(pixels, dataset), dataset).astype(np.float64)
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    scaled = np.zeros_like(values) if hi <= lo else (values - lo) / (hi - lo) * 255.0
    image = np.clip(scaled, 0, 255).astype(np.uint8)
    if getattr(dataset, "PhotometricInterpretation", "") == "MONOCHROME1":
        image = 255 - image
    return image


def preview(source_path: str | None, source_member: str | None) -> Preview:
    """The preview of the instance read from ``source_path`` (and ``source_member`` of a zip)."""
    if not source_path or source_path.startswith(("http://", "https://")):
        return Preview(None, "No preview: the instance was not read from a local file.")
    try:
        import pydicom

        source = _open(source_path, source_member)
        dataset = pydicom.dcmread(source)
        if "PixelData" not in dataset and "FloatPixelData" not in dataset and "DoubleFloatPixelData" not in dataset:
            return Preview(None, "No preview: the instance has no pixel data.")
        pixels = dataset.pixel_array
    except FileNotFoundError:
        return Preview(None, f"No preview: {source_path} is not on this machine (the headers were read elsewhere, "
                             "or the file has moved).")
    except Exception as error:  # pydicom's decoders raise many kinds; each is a note, never a traceback
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return Preview(None, f"No preview: pydicom could not decode the pixel data ({reason[:200]}).")
    frames = int(getattr(dataset, "NumberOfFrames", 1) or 1)
    if frames > 1 and pixels.ndim >= 3:
        pixels = pixels[frames // 2]
    image = _to_8bit(pixels, dataset)
    step = max(1, int(np.ceil(max(image.shape[:2]) / MAX_SIDE)))
    note = f"{dataset.get('Rows', '?')}×{dataset.get('Columns', '?')}"
    if frames > 1:
        note += f", frame {frames // 2 + 1} of {frames}"
    return Preview(np.ascontiguousarray(image[::step, ::step]), note)
