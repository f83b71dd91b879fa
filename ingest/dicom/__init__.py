"""DICOM headers → the lake tables dicom/{instances,elements,errors}."""

from __future__ import annotations
