"""An even blend of a LightGBM booster and a logistic regression, in the booster's shape.

Both parts score log-odds from the same design matrix; the blend scores `weight * tree + (1 -
weight) * linear`. Averaging a flexible model with a stable one lowers the variance of either
alone (on a few hundred leads, or where the newest period drifted from the training one, neither
part is reliably the better). Its contributions are the same weighted sum of the parts' exact
SHAP values (TreeSHAP and the additive terms), so rows still sum to the raw score.

Stored as the tree's model file (`model.txt`), the regression's `linear.json` and `blend.json`
(the weight).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import lightgbm as lgb
import numpy as np

from core.linear_model import LINEAR_FILE, LinearModel

BLEND_FILE = "blend.json"


@dataclass(frozen=True)
class BlendModel:
    """`weight * tree + (1 - weight) * linear` in log-odds, with the booster interface LeadLens
    uses (`predict` with `raw_score` or `pred_contrib`, `feature_name`, `current_iteration`,
    `feature_importance`, `save_model`)."""

    tree: lgb.Booster
    linear: LinearModel
    weight: float = 0.5

    def predict(self, x: np.ndarray, raw_score: bool = False, pred_contrib: bool = False,
                num_threads: int = 0) -> np.ndarray:
        """Log-odds (`raw_score`), SHAP values with the base value last (`pred_contrib`), else
        probabilities."""
        w = self.weight
        if pred_contrib:
            tree = cast(np.ndarray, self.tree.predict(x, pred_contrib=True,
                                                      num_threads=num_threads))
            return w * tree + (1 - w) * self.linear.predict(x, pred_contrib=True)
        tree = cast(np.ndarray, self.tree.predict(x, raw_score=True, num_threads=num_threads))
        raw = w * tree + (1 - w) * self.linear.predict(x, raw_score=True)
        return raw if raw_score else 1.0 / (1.0 + np.exp(-raw))

    def feature_name(self) -> list[str]:
        """The input names, in design-matrix order."""
        return list(self.tree.feature_name())

    def current_iteration(self) -> int:
        """The tree part's rounds."""
        return int(self.tree.current_iteration())

    def feature_importance(self, importance_type: str = "gain") -> np.ndarray:
        """Each part's importance scaled to sum to one, weighted like the scores."""
        parts = []
        for imp in (self.tree.feature_importance(importance_type),
                    self.linear.feature_importance()):
            imp = np.asarray(imp, dtype=np.float64)
            parts.append(imp / imp.sum() if imp.sum() > 0 else imp)
        return self.weight * parts[0] + (1 - self.weight) * parts[1]

    def save_model(self, path: str) -> None:
        """Write `model.txt` (the tree) at `path`, `linear.json` and `blend.json` beside it."""
        self.tree.save_model(path)
        self.linear.save_model(path)
        Path(path).with_name(BLEND_FILE).write_text(json.dumps({"weight": self.weight}),
                                                    encoding="utf-8")

    @classmethod
    def load(cls, directory: Path, tree_file: str) -> BlendModel:
        """Read the three files from a bundle folder (the tree from `tree_file`); ValueError
        names what is wrong."""
        try:
            weight = float(json.loads((directory / BLEND_FILE).read_text(encoding="utf-8"))
                           ["weight"])
        except (OSError, KeyError, TypeError, ValueError) as err:
            raise ValueError(f"{directory / BLEND_FILE}: not a LeadLens blend ({err})") from None
        if not 0.0 <= weight <= 1.0:
            raise ValueError(f"{directory / BLEND_FILE}: weight {weight} is not in [0, 1]")
        tree = lgb.Booster(model_file=str(directory / tree_file))
        linear = LinearModel.load(directory / LINEAR_FILE)
        if list(tree.feature_name()) != linear.feature_name():
            raise ValueError(f"{directory}: the blend's two parts read different features")
        return cls(tree, linear, weight)
