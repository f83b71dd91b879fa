"""DICOMweb servers (QIDO-RS / WADO-RS metadata, Orthanc, Google Cloud Healthcare) -> the DICOM lake tables."""

from __future__ import annotations
