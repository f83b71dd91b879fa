"""Sources to the Parquet lake: the lake's transactions, the DICOM format, one folder per source.

Knows nothing of warehouses, dbt or the command line.
"""

from __future__ import annotations
