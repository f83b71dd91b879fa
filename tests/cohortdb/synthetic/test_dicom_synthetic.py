"""The synthetic DICOM generator: files read back with pydicom and look like MIDRC's."""

from __future__ import annotations

import io
import random
import re
import zipfile
from collections import Counter
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian

from cohortdb.synthetic import dicom_values as values
from cohortdb.synthetic.dicom import (
    SeriesEncoder,
    generate_corpus,
    generate_dataset,
    plan_corpus,
    series_datasets,
)

N_CRDX, N_CT, CT_SLICES, N_MR, MR_SLICES = 200, 2, 6, 1, 4
CORPUS_ARGS = dict(n_crdx=N_CRDX, n_ct_series=N_CT, ct_slices=CT_SLICES, n_mr_series=N_MR,
                   mr_slices=MR_SLICES, seed=0, pixel_bytes=100)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Path]]:
    out_dir = tmp_path_factory.mktemp("synthetic")
    return out_dir, generate_corpus(out_dir, workers=1, **CORPUS_ARGS)


@pytest.fixture(scope="module")
def datasets(corpus: tuple[Path, list[Path]]) -> list[Dataset]:
    return [dcmread(path) for path in corpus[1]]


def element_count(ds: Dataset) -> int:
    """Elements of ``ds`` including those inside sequence items (file meta excluded)."""
    return sum(1 + sum(element_count(item) for item in element.value)
               if element.VR == "SQ" else 1 for element in ds)


def sequence_depth(ds: Dataset) -> int:
    """How many sequences deep the deepest element sits (0: no sequences)."""
    depths = [1 + max((sequence_depth(item) for item in element.value), default=0)
              for element in ds if element.VR == "SQ"]
    return max(depths, default=0)


def by_modality(datasets: list[Dataset], *modalities: str) -> list[Dataset]:
    return [ds for ds in datasets if ds.Modality in modalities]


def test_counts_per_modality(datasets: list[Dataset]) -> None:
    counts = Counter(ds.Modality for ds in datasets)
    assert counts["CR"] + counts["DX"] == N_CRDX
    assert counts["DX"] > counts["CR"] > 0
    assert counts["CT"] == N_CT * CT_SLICES
    assert counts["MR"] == N_MR * MR_SLICES


def test_layout_matches_headers(corpus: tuple[Path, list[Path]],
                                datasets: list[Dataset]) -> None:
    out_dir, paths = corpus
    for path, ds in zip(paths, datasets, strict=True):
        assert path.relative_to(out_dir).parts == (
            ds.PatientID, ds.StudyInstanceUID, ds.SeriesInstanceUID, f"{ds.SOPInstanceUID}.dcm")
    assert len({ds.SOPInstanceUID for ds in datasets}) == len(datasets)


def test_file_format_is_midrc_like(corpus: tuple[Path, list[Path]],
                                   datasets: list[Dataset]) -> None:
    assert corpus[1][0].read_bytes()[128:132] == b"DICM"
    for ds in datasets:
        assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
        assert ds.file_meta.ImplementationVersionName == "GDCM 3.1.0"
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert ds.SOPInstanceUID.startswith(values.UID_ROOT)
        assert len(ds.SOPInstanceUID) <= 64
        assert len(ds.PixelData) == 100


def test_deidentification_and_ctp_block(datasets: list[Dataset]) -> None:
    for ds in datasets:
        codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
        assert codes == ["113100", "113107", "113108", "113109"]
        ctp = ds.private_block(0x0013, "CTP")
        site_id = ds.PatientID.split("-")[0]
        assert ctp[0x10].value.startswith("MIDRC-")
        assert ctp[0x12].value == ctp[0x13].value == site_id
        assert ds.SOPInstanceUID.startswith(f"{values.UID_ROOT}{site_id}.")


def test_radiograph_values_are_plausible(datasets: list[Dataset]) -> None:
    radiographs = by_modality(datasets, "CR", "DX")
    for ds in radiographs:
        assert re.fullmatch(r"\d{6}-\d{6}", ds.PatientID)
        assert re.fullmatch(r"\d{3}Y", ds.PatientAge)
        assert "20190101" <= ds.StudyDate <= "20231231"
        assert 70 <= float(ds.KVP) <= 125
        assert ds.BodyPartExamined == "CHEST"
        assert 95 <= element_count(ds) <= 130
    assert {ds.ViewPosition for ds in radiographs} >= {"AP", "PA", "LATERAL"}
    assert len({ds.DetectorManufacturerName for ds in radiographs if "DetectorType" in ds}) >= 4
    assert {len(ds.DeidentificationMethodCodeSequence) for ds in radiographs} == {4}


def test_study_series_instance_shape(datasets: list[Dataset]) -> None:
    radiographs = by_modality(datasets, "CR", "DX")
    studies_per_patient = Counter(
        patient for patient, _ in {(ds.PatientID, ds.StudyInstanceUID) for ds in radiographs})
    series_per_study = Counter(study for study, _ in
                               {(ds.StudyInstanceUID, ds.SeriesInstanceUID) for ds in radiographs})
    instances_per_series = Counter(ds.SeriesInstanceUID for ds in radiographs)
    assert max(studies_per_patient.values()) >= 3
    assert set(series_per_study.values()) <= {1, 2, 3}
    assert set(instances_per_series.values()) == {1, 2}


def test_ct_has_nested_and_private_sequences(datasets: list[Dataset]) -> None:
    slices = by_modality(datasets, "CT")
    for ds in slices:
        assert 150 <= element_count(ds) <= 250
        assert sequence_depth(ds) >= 3
        protocol = ds.RequestAttributesSequence[0].ScheduledProtocolCodeSequence[0]
        assert protocol.ProtocolContextSequence[0].ConceptNameCodeSequence[0].CodeValue
        assert ds.ReferencedImageSequence[0].PurposeOfReferenceCodeSequence[0].CodeValue \
            == "121311"
        assert any(element.VR == "SQ" and element.tag.is_private for element in ds)
        assert ds.CTDIvol > 0
        assert len(ds.ImageOrientationPatient) == 6 and len(ds.PixelSpacing) == 2
        assert float(ds.SliceLocation) == float(ds.ImagePositionPatient[2])
    locations = {(ds.SeriesInstanceUID, float(ds.SliceLocation)) for ds in slices}
    assert len(locations) == len(slices)


def test_mr_has_mr_attributes(datasets: list[Dataset]) -> None:
    for ds in by_modality(datasets, "MR"):
        assert 150 <= element_count(ds) <= 250
        assert float(ds.MagneticFieldStrength) in (1.5, 3.0)
        assert float(ds.EchoTime) > 0 and float(ds.RepetitionTime) > 0
        assert ds.SequenceName.startswith("*")


def test_character_sets_decode_to_the_written_names(corpus: tuple[Path, list[Path]],
                                                    datasets: list[Dataset]) -> None:
    pools = {character_set: names for character_set, names, _ in values.CHARACTER_SETS}
    seen = set()
    for path, ds in zip(corpus[1], datasets, strict=True):
        character_set = ds.SpecificCharacterSet
        if not isinstance(character_set, str):
            character_set = tuple(character_set)
        seen.add(character_set)
        assert str(ds.PatientName) in pools[character_set]
        if "ReferringPhysicianName" in ds:
            assert str(ds.ReferringPhysicianName) in pools[character_set]
        if character_set == ("", "ISO 2022 IR 87"):
            assert b"\x1b$B" in path.read_bytes()  # JIS X 0208 escape, not UTF-8
    assert seen == set(pools)
    assert any(str(ds.PatientName) == "Müller^Jürgen" for ds in datasets)


def test_same_seed_same_bytes_whatever_the_workers(
        corpus: tuple[Path, list[Path]], tmp_path: Path) -> None:
    out_dir, paths = corpus
    again = generate_corpus(tmp_path, workers=2, **CORPUS_ARGS)
    assert [path.relative_to(tmp_path) for path in again] == \
        [path.relative_to(out_dir) for path in paths]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(paths, again, strict=True))


def test_other_seed_other_uids() -> None:
    first = plan_corpus(n_crdx=5, seed=1)
    second = plan_corpus(n_crdx=5, seed=2)
    assert not {plan.series_uid for plan in first} & {plan.series_uid for plan in second}


def test_zip_per_series(tmp_path: Path) -> None:
    zips = generate_corpus(tmp_path, n_crdx=20, n_ct_series=1, ct_slices=5, n_mr_series=0,
                           zip_series=True, workers=1)
    members = 0
    for zip_path in zips:
        patient_id = zip_path.parent.name
        assert zip_path.parent.parent == tmp_path
        with zipfile.ZipFile(zip_path) as archive:
            for name in archive.namelist():
                ds = dcmread(io.BytesIO(archive.read(name)))
                assert name == f"{ds.SOPInstanceUID}.dcm"
                assert zip_path.name == f"{ds.SeriesInstanceUID}.zip"
                assert ds.PatientID == patient_id
                members += 1
    assert members == 20 + 5


def test_encoder_bytes_equal_pydicom_save_as() -> None:
    for plan in plan_corpus(n_crdx=60, n_ct_series=2, ct_slices=3, n_mr_series=2,
                            mr_slices=3, seed=3):
        encoder = SeriesEncoder()
        for ds in series_datasets(plan, pixel_bytes=16):
            expected = io.BytesIO()
            ds.save_as(expected, enforce_file_format=True)
            assert encoder.encode(ds) == expected.getvalue()


@pytest.mark.parametrize("kind, modalities", [("crdx", {"CR", "DX"}), ("ct", {"CT"}),
                                              ("mr", {"MR"})])
def test_generate_dataset(kind: str, modalities: set[str]) -> None:
    ds = generate_dataset(kind, random.Random(5))
    assert ds.Modality in modalities
    assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID


def test_generate_dataset_rejects_unknown_kind() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        generate_dataset("us", random.Random(0))
