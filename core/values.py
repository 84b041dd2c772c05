"""Cell-level helpers shared by the feature paths and the model input encoder (no heavy
imports: the model bundle loads in environments without the warehouse)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def is_missing(value: Any) -> bool:
    """None, NaN, pd.NA or NaT."""
    return value is None or value is pd.NA or value is pd.NaT or (
        isinstance(value, float) and np.isnan(value))
