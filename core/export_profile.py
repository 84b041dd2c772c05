"""What the last ingest said about the export's shape, so training settings can follow the data.

A flat export (one row per lead through a source mapping, no activity log) has no history to
snapshot: its conversion examples are one per lead at creation, and where the mapping dates
outcomes `known_after_days` after creation, the label's horizon must reach past that. `leadlens
ingest --source` writes `export_profile.json` in the home; `load_runtime` applies it to every
training setting the config file leaves unset (`apply_profile`), so `leadlens ingest --source
... && leadlens train` needs no second config file. A setting in the config file always wins.
An ingest of an activity log removes the profile.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from core.settings import ConfigError, Settings

PROFILE_FILE = "export_profile.json"


@dataclass(frozen=True)
class ExportProfile:
    """The shape of a flat export as its mapping describes it."""

    mapping: str
    """The mapping's description (or file name), for messages."""
    known_after_days: float | None
    """Outcomes are dated this many days after creation (an outcome column without dates)."""
    losses_recorded: bool
    """False when the mapping dates wins only (`converted_at` without `closed_lost_at`)."""


def write_profile(home: Path, profile: ExportProfile | None) -> None:
    """Record the profile of the export just ingested (None: an activity log; removes it)."""
    path = home / PROFILE_FILE
    if profile is None:
        path.unlink(missing_ok=True)
        return
    home.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(profile), indent=1), encoding="utf-8")
    os.replace(tmp, path)


def read_profile(home: Path) -> ExportProfile | None:
    """The recorded profile, or None; a damaged file is a ConfigError naming it."""
    path = home / PROFILE_FILE
    if not path.is_file():
        return None
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        after = data["known_after_days"]
        return ExportProfile(str(data["mapping"]), None if after is None else float(after),
                             bool(data["losses_recorded"]))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ConfigError(f"{path}: not a LeadLens export profile ({err}); ingest again or "
                          "delete it") from None


def apply_profile(settings: Settings, profile: ExportProfile | None
                  ) -> tuple[Settings, tuple[str, ...]]:
    """Training settings that follow a flat export, for every key the config left unset; with
    a note per setting derived."""
    if profile is None:
        return settings, ()
    given = settings.train.model_fields_set
    update: dict[str, Any] = {}
    notes = []
    if "conversion_examples" not in given:
        update["conversion_examples"] = "creation"
        notes.append("train.conversion_examples: creation (a flat export has no history to "
                     "snapshot: one example per lead, at creation)")
    if profile.known_after_days is not None and "horizon_days" not in given:
        update["horizon_days"] = math.floor(profile.known_after_days) + 1
        notes.append(f"train.horizon_days: {update['horizon_days']} (outcomes are dated "
                     f"{profile.known_after_days:g} days after creation in {profile.mapping})")
    if not update and profile.losses_recorded:
        return settings, ()
    sections: dict[str, Any] = {"train": settings.train.model_copy(update=update)}
    if not profile.losses_recorded and "open_lead_expiry_days" not in \
            settings.engagement.model_fields_set:
        days = int(update.get("horizon_days", settings.train.horizon_days))
        sections["engagement"] = settings.engagement.model_copy(
            update={"open_lead_expiry_days": days})
        notes.append(f"engagement.open_lead_expiry_days: {days} (the export records no losses: "
                     "a lead without an outcome counts as not converted in the track records "
                     "once its horizon has passed)")
    return settings.model_copy(update=sections), tuple(
        f"{n}; set it in the config file to override" for n in notes)
