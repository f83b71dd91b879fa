"""Value pools for the synthetic DICOM generator (:mod:`cohortdb.synthetic.dicom`).

Plain data only: sites, devices, descriptions, names per character set, and the
code sequences MIDRC's de-identification writes. Shapes follow a real MIDRC
chest DX header (RICORD, CTP + GDCM) and common CT/MR vendor headers.
"""

from __future__ import annotations

from dataclasses import dataclass

UID_ROOT = "1.2.826.0.1.3680043.10.474."
"""MIDRC's UID root; a site id and a hash follow (``<root><site>.<digits>``, 64 chars)."""

GDCM_FILE_META = {
    "ImplementationClassUID": "1.2.826.0.1.3680043.2.1143.107.104.103.115.3.1.0",
    "ImplementationVersionName": "GDCM 3.1.0",
    "SourceApplicationEntityTitle": "gdcmconv",
}
"""File meta as MIDRC's gdcmconv step leaves it."""

SOP_CLASS_CR = "1.2.840.10008.5.1.4.1.1.1"
SOP_CLASS_DX = "1.2.840.10008.5.1.4.1.1.1.1"
SOP_CLASS_CT = "1.2.840.10008.5.1.4.1.1.2"
SOP_CLASS_MR = "1.2.840.10008.5.1.4.1.1.4"


@dataclass(frozen=True)
class Site:
    """One contributing site: its CTP project names, de-identification method, and the UTC
    offset its headers record (TimezoneOffsetFromUTC, ``-0500``; ``None``: not recorded)."""

    site_id: str
    project: str
    deid_method: str
    keeps_manufacturer: bool
    utc_offset: str | None = None


SITES = (
    Site("419639", "MIDRC-RICORD", "RSNA Covid-19 Dataset Default", keeps_manufacturer=False, utc_offset="-0500"),
    Site("419640", "MIDRC-ACR", "MIDRC ACR Default", keeps_manufacturer=True),
    Site("419641", "MIDRC-RSNA", "RSNA Covid-19 Dataset Default", keeps_manufacturer=True, utc_offset="-0600"),
    Site("419642", "MIDRC-TCIA", "TCIA CTP Default", keeps_manufacturer=True, utc_offset="-0500"),
)

DEID_METHOD_CODES = (
    ("113100", "Basic Application Confidentiality Profile"),
    ("113107", "Retain Longitudinal Temporal Information Modified Dates Option"),
    ("113108", "Retain Patient Characteristics Option"),
    ("113109", "Retain Device Identity Option"),
)
"""(CodeValue, CodeMeaning) of the 4 items of DeidentificationMethodCodeSequence (scheme DCM)."""


@dataclass(frozen=True)
class RadiographyDevice:
    """A CR plate reader or DX detector.

    pixel_spacing_mm is the imager pixel spacing in mm; rows/columns are the
    nominal image matrix in pixels.
    """

    modality: str
    manufacturer: str
    model: str
    detector_type: str
    detector_description: str
    pixel_spacing_mm: float
    rows: int
    columns: int
    software_version: str
    weight: int


RADIOGRAPHY_DEVICES = (
    RadiographyDevice("DX", "CARESTREAM HEALTH", "DRXPlus3543C", "DIRECT",
                      "DRX Plus 3543C Detector", 0.139, 2518, 2813, "1.4", 30),
    RadiographyDevice("DX", "CARESTREAM HEALTH", "DRX-Revolution", "SCINTILLATOR",
                      "DRX-1C Wireless Detector", 0.139, 3072, 2560, "5.7.412.7005", 20),
    RadiographyDevice("CR", "CARESTREAM HEALTH", "DirectView CR 975", "STORAGE",
                      "CR Cassette", 0.168, 2048, 2500, "5.4.215.100", 5),
    RadiographyDevice("DX", "GE Healthcare", "Optima XR220amx", "SCINTILLATOR",
                      "GE FlashPad", 0.2, 2021, 2021, "dm_Platform_release_FW17.1", 15),
    RadiographyDevice("DX", "GE Healthcare", "Definium 8000", "SCINTILLATOR",
                      "GE Revolution XQi Detector", 0.2, 2022, 2022, "DM_Platform 10.2", 6),
    RadiographyDevice("DX", "Philips Medical Systems", "DigitalDiagnost", "SCINTILLATOR",
                      "Pixium 4600", 0.148, 2846, 2330, "2.1.3", 8),
    RadiographyDevice("DX", "Philips Medical Systems", "MobileDiagnost wDR", "SCINTILLATOR",
                      "SkyPlate Large", 0.148, 2836, 2336, "1.1.4", 6),
    RadiographyDevice("DX", "SIEMENS", "Fluorospot Compact FD", "SCINTILLATOR",
                      "Pixium 4343", 0.148, 2880, 2880, "VF85B", 5),
    RadiographyDevice("DX", "Siemens Healthineers", "Mobilett Mira Max", "SCINTILLATOR",
                      "MAX wi-D", 0.148, 2816, 2304, "VF10J", 4),
    RadiographyDevice("CR", "FUJIFILM Corporation", "FCR CAPSULA XLII", "STORAGE",
                      "ST-VI Imaging Plate", 0.15, 2140, 1760, "A07-12", 4),
    RadiographyDevice("DX", "FUJIFILM Corporation", "FDR D-EVO II", "SCINTILLATOR",
                      "DR-ID 1201SE", 0.15, 2836, 2336, "V9.1", 4),
    RadiographyDevice("CR", "Agfa", "CR 85-X", "STORAGE", "MD4.0T Plate",
                      0.1, 3480, 4248, "NX_3.0.8000", 3),
    RadiographyDevice("DX", "Agfa", "DX-D 100", "SCINTILLATOR", "DX-D 10C",
                      0.139, 3001, 2465, "NX_20.0.2002", 3),
    RadiographyDevice("DX", "KONICA MINOLTA", "AeroDR", "SCINTILLATOR",
                      "AeroDR 1417HQ", 0.175, 2428, 1996, "1.10", 2),
)

CHEST_STUDY_TYPES = (
    # (StudyDescription, views: the ViewPosition of each series in order, weight)
    ("XR CHEST 1 VIEW AP", ("AP",), 40),
    ("XR CHEST PORTABLE", ("AP",), 12),
    ("XR CHEST 1 VIEW PA", ("PA",), 6),
    ("XR CHEST 2 VIEWS PA AND LATERAL", ("PA", "LATERAL"), 25),
    ("XR CHEST 2 VIEWS AP AND LATERAL", ("AP", "LATERAL"), 7),
    ("XR CHEST 3 VIEWS", ("PA", "LATERAL", "AP"), 6),
    ("DX CHEST PA/LAT", ("PA", "LL"), 4),
)

DX_ONLY_PREFIX = "DX "
"""A chest study type whose description starts so is done on DX equipment only."""

VIEW_SERIES_DESCRIPTIONS = {
    "AP": ("AP", "CHEST AP PORTABLE", "AP CHEST", "Chest AP"),
    "PA": ("PA", "CHEST PA", "PA CHEST", "Chest PA"),
    "LATERAL": ("LATERAL", "LAT", "CHEST LAT", "Chest Lateral"),
    "LL": ("LL", "LATERAL LEFT"),
}

VIEW_KVP_RANGE = {"AP": (70.0, 100.0), "PA": (100.0, 125.0), "LATERAL": (105.0, 125.0),
                  "LL": (105.0, 125.0)}
"""Tube voltage range (kV) per view position."""

CT_SCANNERS = (
    # (Manufacturer, ManufacturerModelName, SoftwareVersions, kernels, weight)
    ("GE MEDICAL SYSTEMS", "Revolution CT", "revo_ct_22mw.32", ("LUNG", "STANDARD", "BONE"), 3),
    ("GE MEDICAL SYSTEMS", "LightSpeed VCT", "07MW18.4", ("LUNG", "STANDARD"), 2),
    ("SIEMENS", "SOMATOM Definition AS+", "syngo CT VA48A", ("I70f\\3", "Br40d\\3"), 3),
    ("SIEMENS", "SOMATOM Force", "syngo CT VB10A", ("Bl57d\\3", "Br40d\\3"), 2),
    ("Philips", "iCT 256", "4.1.6", ("YB", "B"), 2),
    ("TOSHIBA", "Aquilion ONE", "V8.2", ("FC52", "FC08"), 1),
)

CONTRAST_AGENT = "OMNIPAQUE 350"
CT_STUDY_TYPES = (
    # (StudyDescription, CPT CodeValue, CodeMeaning, ContrastBolusAgent ('' without), weight)
    ("CT CHEST WO CONTRAST", "71250", "CT THORAX W/O DYE", "", 5),
    ("CT CHEST W CONTRAST", "71260", "CT THORAX W/DYE", CONTRAST_AGENT, 3),
    ("CTA CHEST PE PROTOCOL", "71275", "CT ANGIOGRAPHY CHEST", CONTRAST_AGENT, 2),
    ("CT CHEST HIGH RESOLUTION", "71250", "CT THORAX W/O DYE", "", 1),
)

MR_SCANNERS = (
    # (Manufacturer, ManufacturerModelName, SoftwareVersions, field strength T, weight)
    ("SIEMENS", "Skyra", "syngo MR E11", 3.0, 3),
    ("SIEMENS", "Aera", "syngo MR E11", 1.5, 2),
    ("GE MEDICAL SYSTEMS", "SIGNA Premier", "28\\LX\\MR29.1_EA_2118.a", 3.0, 2),
    ("Philips Medical Systems", "Ingenia", "5.4.1\\5.4.1.0", 1.5, 2),
)

MR_SEQUENCES = (
    # (SeriesDescription, SequenceName, ScanningSequence, SequenceVariant, TR ms, TE ms, flip deg)
    ("T2 HASTE AX", "*h2d1_256", "SE", ("SK", "SS"), 1400.0, 93.0, 160.0),
    ("T1 VIBE AX", "*fl3d1", "GR", ("SP", "SK"), 3.97, 1.88, 9.0),
    ("AX T2 FLAIR", "*tir2d1_16", ("SE", "IR"), ("SK", "SP", "MP"), 9000.0, 81.0, 150.0),
    ("CINE SSFP SAX", "*tfi2d1_12", "GR", ("SK", "SS"), 40.0, 1.2, 55.0),
    ("AX T1 SE", "*se2d1", "SE", ("SK",), 550.0, 12.0, 90.0),
)

MR_STUDY_TYPES = (
    # (StudyDescription, BodyPartExamined, CPT CodeValue, CodeMeaning, SeriesDescriptions of
    #  its MR_SEQUENCES in series order, weight)
    ("MRI CHEST WO CONTRAST", "CHEST", "71550", "MRI CHEST W/O DYE", ("T2 HASTE AX", "T1 VIBE AX"), 1),
    ("MR CARDIAC MORPHOLOGY", "HEART", "75557", "CARDIAC MRI FOR MORPH", ("CINE SSFP SAX", "T2 HASTE AX"), 1),
    ("MRI BRAIN WO CONTRAST", "HEAD", "70551", "MRI BRAIN STEM W/O DYE", ("AX T2 FLAIR", "AX T1 SE"), 1),
)
MR_STUDY_DESCRIPTIONS = tuple(t[0] for t in MR_STUDY_TYPES)

LATIN1_NAMES = (
    "Müller^Jürgen", "Schäfer^Günther", "Dubois^Françoise", "Núñez^José", "Ångström^Björn",
    "Øvergård^Åse", "O'Brien^Siobhán", "Brontë^Zoë", "Smith^John", "Garcia^María",
    "Jørgensen^Søren", "Lefèvre^Hélène", "Costa^João", "Weiß^Käthe", "Doe^Jane",
)
UTF8_NAMES = (
    "Παπαδόπουλος^Γιώργος", "Wang^XiaoDong=王^小東", "Hong^Gildong=홍^길동=홍^길동",
    "Иванов^Иван", "Nguyễn^Văn An",
    "Yamada^Tarou=山田^太郎=やまだ^たろう",
)
ISO2022_JP_NAMES = (
    "Yamada^Tarou=山田^太郎=やまだ^たろう",
    "Suzuki^Hanako=鈴木^花子=すずき^はなこ",
    "Tanaka^Ichirou=田中^一郎=たなか^いちろう",
    "Satou^Kenji=佐藤^健二=さとう^けんじ",
)

CHARACTER_SETS = (
    # (SpecificCharacterSet value(s), names, weight)
    ("ISO_IR 100", LATIN1_NAMES, 85),
    ("ISO_IR 192", UTF8_NAMES, 10),
    (("", "ISO 2022 IR 87"), ISO2022_JP_NAMES, 5),
)
"""Per-patient character set; ``("", "ISO 2022 IR 87")`` is PS3.5 H.3.1's ``\\ISO 2022 IR 87``."""

INSTITUTIONS = ("Mock General Hospital", "Hôpital Sainte-Clémence", "St. Jürgen Klinikum",
                "University Medical Center")
