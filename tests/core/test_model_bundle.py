"""The design matrix is the same whichever encoding path a frame takes (one lead or many)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from core.model_bundle import encode


def test_small_and_large_frames_encode_alike():
    rng = np.random.default_rng(0)
    n = 300
    frame = pd.DataFrame({
        "touches": rng.integers(0, 9, n).astype("int64"),
        "gap": np.where(rng.random(n) < 0.2, np.nan, rng.random(n) * 30),
        "size_text": pd.array(np.where(rng.random(n) < 0.1, None,
                                       rng.integers(1, 500, n).astype(str)), dtype="string"),
        "flag": rng.random(n) < 0.5,
        "source": pd.array(rng.choice(["web", "event", "unseen", None], n), dtype="string"),
        "industry": rng.choice(["retail", "software"], n).astype(object),
    })
    features = ["touches", "gap", "size_text", "flag", "source", "industry"]
    cats = {"source": ("event", "web"), "industry": ("retail", "software")}
    big = encode(frame, features, cats)  # > 64 rows: the vectorised path
    small = np.vstack([encode(frame.iloc[i:i + 7], features, cats) for i in range(0, n, 7)])
    assert np.array_equal(np.isnan(big), np.isnan(small))
    assert np.allclose(np.nan_to_num(big, nan=-9), np.nan_to_num(small, nan=-9))
    assert np.isnan(big[frame["source"].isna().to_numpy() | (frame["source"] == "unseen")
                        .fillna(False).to_numpy(), 4]).all()
