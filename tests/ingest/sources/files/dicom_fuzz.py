"""Seeded mutations of pydicom's test files, and three small known crashers (shared by
``test_dicom_fuzz.py`` and ``bench/fuzz_dicom.py``)."""

from __future__ import annotations

import random
import struct
import warnings
from pathlib import Path

import pydicom.data

SEEDS = ("CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "ExplVR_BigEnd.dcm", "nested_priv_SQ.dcm")
"""pydicom's bundled test files the mutations start from."""

_VRS = (b"AE", b"AS", b"AT", b"CS", b"DA", b"DS", b"DT", b"FL", b"FD", b"IS", b"LO", b"LT", b"OB", b"OW", b"PN",
        b"SH", b"SL", b"SQ", b"SS", b"ST", b"TM", b"UI", b"UL", b"UN", b"US", b"UT", b"UC", b"UR", b"OD", b"OL")
_META_IMPLICIT_LE = "1.2.840.10008.1.2"


def seed_files() -> list[bytes]:
    """The bytes of :data:`SEEDS`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [Path(pydicom.data.get_testdata_file(name)).read_bytes() for name in SEEDS]


def _elem(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    """One explicit VR little endian element."""
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR"):
        return struct.pack("<HH2sHL", group, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def _file(body: bytes, syntax: str = "1.2.840.10008.1.2.1") -> bytes:
    """Preamble, DICM and a minimal file meta (explicit VR little endian unless ``syntax``), then ``body``."""
    uid = syntax.encode() + (b"\0" if len(syntax) % 2 else b"")
    meta = _elem(0x0002, 0x0010, b"UI", uid)
    return bytes(128) + b"DICM" + _elem(0x0002, 0x0000, b"UL", struct.pack("<L", len(meta))) + meta + body


def deep_nesting(levels: int = 600) -> bytes:
    """Sequences nested ``levels`` deep (undefined lengths, no delimiters: a few bytes a level)."""
    level = struct.pack("<HH2sHL", 0x0008, 0x1115, b"SQ", 0, 0xFFFFFFFF) + struct.pack("<HHL", 0xFFFE, 0xE000,
                                                                                      0xFFFFFFFF)
    return _file(_elem(0x0008, 0x0060, b"CS", b"CT") + level * levels)


def multivalued_private_creator() -> bytes:
    """A private creator (0009,0010) with two values, owning a private element."""
    body = (_elem(0x0008, 0x0060, b"CS", b"CT") + _elem(0x0009, 0x0010, b"LO", b"ACME\\OTHER ")
            + _elem(0x0009, 0x1001, b"LO", b"value ") + _elem(0x0010, 0x0010, b"PN", b"Doe^John"))
    return _file(body)


def nul_in_charset() -> bytes:
    """A NUL byte inside Specific Character Set (0008,0005)."""
    body = (_elem(0x0008, 0x0005, b"CS", b"ISO_IR\x00100") + _elem(0x0008, 0x0060, b"CS", b"CT")
            + _elem(0x0010, 0x0010, b"PN", b"Doe^John"))
    return _file(body)


def crashers() -> dict[str, bytes]:
    """The three known crashers, by file name."""
    return {"deep_nesting.dcm": deep_nesting(), "private_creator_multi.dcm": multivalued_private_creator(),
            "charset_nul.dcm": nul_in_charset()}


def _tag_offsets(data: bytes) -> list[int]:
    """Offsets of plausible explicit VR element headers (a VR's two letters at +4)."""
    offsets: list[int] = []
    for vr in _VRS:
        start = data.find(vr, 132)
        while start != -1 and len(offsets) < 400:
            if start >= 136:
                offsets.append(start - 4)
            start = data.find(vr, start + 1)
    return sorted(offsets) or [132]


def mutate(data: bytes, rng: random.Random) -> tuple[str, bytes]:
    """One mutation of ``data``: (its kind, the bytes)."""
    kind = rng.choice(("flip", "truncate", "length", "insert", "delete", "vr", "nest", "huge", "multi"))
    buf = bytearray(data)
    if len(buf) < 200:  # too little left to mutate meaningfully (after a truncation)
        return "truncate", data
    header_end = min(len(buf), 4096)
    if kind == "flip":
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(header_end)] ^= 1 << rng.randrange(8)
    elif kind == "truncate":
        del buf[rng.randrange(1, len(buf)):]
    elif kind == "length":
        at = rng.choice(_tag_offsets(data))
        if buf[at + 4:at + 6] in (b"OB", b"OW", b"SQ", b"UN", b"UT") and at + 12 <= len(buf):
            struct.pack_into("<L", buf, at + 8, rng.choice((0, 1, 3, 0xFFFF, 0xFFFFFFFE, rng.randrange(1 << 32))))
        elif at + 8 <= len(buf):
            struct.pack_into("<H", buf, at + 6, rng.choice((0, 1, 0xFFFF, rng.randrange(1 << 16))))
    elif kind == "insert":
        at = rng.randrange(header_end)
        buf[at:at] = rng.randbytes(rng.randint(1, 16))
    elif kind == "delete":
        at = rng.randrange(header_end)
        del buf[at:at + rng.randint(1, 16)]
    elif kind == "vr":
        at = rng.choice(_tag_offsets(data))
        buf[at + 4:at + 6] = rng.choice(_VRS)
    elif kind == "nest":
        return kind, deep_nesting(rng.choice((100, 480, 1000, 3000)))
    elif kind == "huge":
        at = rng.choice(_tag_offsets(data))
        if at + 12 <= len(buf):
            buf[at + 4:at + 6] = rng.choice((b"OB", b"UN", b"UT", b"SQ"))
            struct.pack_into("<HL", buf, at + 6, 0, rng.choice((0x7FFFFFFF, 0x80000000, 0xFFFFFFF0)))
    else:  # several mutations at once
        for _ in range(3):
            buf = bytearray(mutate(bytes(buf), rng)[1])
    return kind, bytes(buf)


def write_corpus(root: Path, n_files: int, seed: int = 0) -> dict[str, str]:
    """The crashers plus ``n_files`` mutated files under ``root``; returns file name → mutation kind."""
    rng = random.Random(seed)
    seeds = seed_files()
    kinds: dict[str, str] = {}
    for name, data in crashers().items():
        (root / name).write_bytes(data)
        kinds[name] = "crasher"
    for index in range(n_files):
        kind, data = mutate(rng.choice(seeds), rng)
        name = f"{index:05d}_{kind}.dcm"
        (root / name).write_bytes(data)
        kinds[name] = kind
    return kinds
