"""The design matrix is the same whichever encoding path a frame takes (one lead or many)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from core.model_bundle import ModelBundle, encode


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


def test_a_damaged_or_tampered_model_file_is_refused_naming_it(tmp_path):
    """A truncated model file is refused before LightGBM parses it (it aborts the process);
    a tampered one that still parses (each tree's leaf values reversed, so every byte count
    still holds, and the digest rewritten to match) is refused by the scores of the stored
    made-up rows."""
    import hashlib
    import json
    import re
    import shutil

    from core.model_bundle import META_FILE, MODEL_FILE, load_bundle
    from tests.core.test_blend_model import _blend
    from tests.core.test_linear_model import _frame

    _b, tree, _linear = _blend(_frame(800, 7))
    bundle = ModelBundle("conversion", tree, _b.features, _b.categories, _b.calibrator, {})
    folder = bundle.save(tmp_path / "ok")
    assert load_bundle(folder).features == bundle.features
    truncated = Path(shutil.copytree(folder, tmp_path / "truncated"))
    text = (truncated / MODEL_FILE).read_text()
    (truncated / MODEL_FILE).write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"model\.txt: its SHA-256 differs"):
        load_bundle(truncated)

    tampered = Path(shutil.copytree(folder, tmp_path / "tampered"))
    flipped = re.sub(r"^(leaf_value=)(.*)$",
                     lambda m: m.group(1) + " ".join(reversed(m.group(2).split(" "))),
                     text, flags=re.MULTILINE)
    assert len(flipped) == len(text)
    assert flipped != text
    (tampered / MODEL_FILE).write_text(flipped)
    meta = json.loads((tampered / META_FILE).read_text())
    meta["integrity"]["sha256"][MODEL_FILE] = hashlib.sha256(flipped.encode()).hexdigest()
    (tampered / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="scores on the stored check rows differ"):
        load_bundle(tampered)


def test_a_bundle_without_digests_is_parsed_in_a_child_process_first(tmp_path):
    """A bundle saved before digests were recorded: its truncated model file would abort this
    process inside LightGBM; it is parsed by a child first and refused, naming the file."""
    import json
    import shutil

    from core.model_bundle import META_FILE, MODEL_FILE, load_bundle
    from tests.core.test_blend_model import _blend
    from tests.core.test_linear_model import _frame

    _b, tree, _linear = _blend(_frame(800, 7))
    bundle = ModelBundle("conversion", tree, _b.features, _b.categories, _b.calibrator, {})
    legacy = bundle.save(tmp_path / "legacy")
    meta = json.loads((legacy / META_FILE).read_text())
    del meta["integrity"]
    (legacy / META_FILE).write_text(json.dumps(meta))
    assert load_bundle(legacy).features == bundle.features  # a sound one still loads
    damaged = Path(shutil.copytree(legacy, tmp_path / "damaged"))
    text = (damaged / MODEL_FILE).read_text()
    (damaged / MODEL_FILE).write_text(text[: len(text) // 2])
    with pytest.raises(ValueError, match=r"model\.txt: LightGBM could not parse it in a child "
                                         r"process \((killed by signal|exit status) \d+\)"):
        load_bundle(damaged)
