"""Gen3 guppy records: the gen3 SDK client, JSON dumps, flattening, DRS downloads."""

from __future__ import annotations
