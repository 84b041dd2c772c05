"""Fitting: LightGBM with early stopping, isotonic calibration, and the two baselines.

All three scorers are calibrated on the validation split, so the report compares like with like.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from core.blend_model import BlendModel
from core.linear_model import CategoryTerm, LinearModel, NumericTerm
from core.model_bundle import Calibrator, ModelBundle, encode
from core.settings import LightGBMConfig, TrainConfig
from training.evaluate import paired_bootstrap


def vocabularies(train: pd.DataFrame, categorical: list[str]) -> dict[str, tuple[str, ...]]:
    """Category vocabularies learned from the training rows only (sorted, so stable)."""
    return {c: tuple(sorted(train[c].dropna().astype(str).unique())) for c in categorical}


PLATT_WEIGHT = 0.01
"""The least share of the logistic curve in the calibrated score: enough to keep distinct raw
scores distinct (and away from 0 and 1), too little to move calibration measurably."""
PLATT_WEIGHTS = (PLATT_WEIGHT, 0.5, 0.99)
"""The mixes of isotonic regression and the logistic curve `fit_calibrator` chooses among."""
CALIBRATION_FOLDS = 5


def fit_calibrator(raw: np.ndarray, y: np.ndarray) -> Calibrator:
    """Centered isotonic regression of the outcome on a raw score (one knot per isotonic block,
    at the block's mean raw score, so the map rises strictly between blocks instead of putting
    thousands of leads on a few dozen values), blended with Platt scaling. The blend's share of
    Platt scaling is chosen among `PLATT_WEIGHTS` by log loss over `CALIBRATION_FOLDS`
    contiguous blocks of the rows (in their given, time, order): isotonic regression needs
    many rows and over-fits a few hundred, where the two-parameter curve is stable."""
    raw = np.asarray(raw, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if len(np.unique(y)) < 2 or np.ptp(raw) == 0:
        return _calibrator(raw, y, PLATT_WEIGHT)
    blocks = np.array_split(np.arange(len(y)), CALIBRATION_FOLDS)
    losses = []
    for weight in PLATT_WEIGHTS:
        loss = 0.0
        for held in blocks:
            rest = np.setdiff1d(np.arange(len(y)), held)
            if len(np.unique(y[rest])) < 2 or np.ptp(raw[rest]) == 0:
                loss = np.inf
                break
            p = np.clip(_calibrator(raw[rest], y[rest], weight)(raw[held]), 1e-6, 1 - 1e-6)
            loss -= float(np.sum(y[held] * np.log(p) + (1 - y[held]) * np.log(1 - p)))
        losses.append(loss)
    best = PLATT_WEIGHTS[int(np.argmin(losses))] if np.isfinite(min(losses)) else PLATT_WEIGHT
    return _calibrator(raw, y, best)


def _calibrator(raw: np.ndarray, y: np.ndarray, platt_weight: float) -> Calibrator:
    order = np.argsort(raw, kind="stable")
    r, t = raw[order], y[order]
    fitted = IsotonicRegression(y_min=0.0, y_max=1.0).fit(r, t).predict(r)
    starts = np.r_[True, np.diff(fitted) != 0]
    block = np.cumsum(starts) - 1
    xs = np.bincount(block, weights=r) / np.bincount(block)
    ys = fitted[starts]
    if len(np.unique(t)) < 2 or np.ptp(r) == 0:
        return Calibrator(tuple(map(float, xs)), tuple(map(float, ys)))
    logit = LogisticRegression(C=1e6).fit(r.reshape(-1, 1), t.astype(int))
    slope = max(float(logit.coef_[0, 0]), 1e-3)  # an unrelated score still ranks the same way
    return Calibrator(tuple(map(float, xs)), tuple(map(float, ys)),
                      (slope, float(logit.intercept_[0])), platt_weight)


def lightgbm_params(cfg: LightGBMConfig) -> dict:
    """The LightGBM parameters every LeadLens model is fitted with."""
    return {
        "objective": "binary",
        "metric": cfg.early_stopping_metric,
        "learning_rate": cfg.learning_rate,
        "num_leaves": cfg.num_leaves,
        "min_data_in_leaf": cfg.min_data_in_leaf,
        "feature_fraction": cfg.feature_fraction,
        "lambda_l2": cfg.lambda_l2,
        "bagging_fraction": cfg.bagging_fraction,
        "bagging_freq": 1 if cfg.bagging_fraction < 1 else 0,
        "seed": cfg.seed,
        "deterministic": True,
        "force_row_wise": True,
        "verbosity": -1,
        "max_cat_to_onehot": 8,
    }


def fit_lightgbm(kind: str, train: pd.DataFrame, valid: pd.DataFrame, features: list[str],
                 categorical: list[str], cfg: LightGBMConfig,
                 meta: dict | None = None) -> ModelBundle:
    """Boost on train with early stopping on validation, then calibrate on validation."""
    cats = vocabularies(train, categorical)
    x_va, y_va = encode(valid, features, cats), valid["label"].to_numpy()
    booster = _boost((encode(train, features, cats), train["label"].to_numpy()), (x_va, y_va),
                     features, categorical, cfg, cfg.early_stopping_metric)
    # a dense matrix in, an ndarray out (LightGBM's return type also covers sparse input)
    calibrator = fit_calibrator(cast(np.ndarray, booster.predict(x_va, raw_score=True)), y_va)
    info = dict(meta or {})
    info["best_iteration"] = int(booster.current_iteration())
    return ModelBundle(kind, booster, tuple(features), cats, calibrator, info)


def _boost(train: tuple[np.ndarray, np.ndarray], valid: tuple[np.ndarray, np.ndarray],
           features: list[str], categorical: list[str], cfg: LightGBMConfig,
           metric: str) -> lgb.Booster:
    """Boost on the `(x, y)` of `train`, stopping early on `metric` over `valid`; keeps only
    the trees up to the best round, so the model is what was validated."""
    dtrain = lgb.Dataset(train[0], train[1], feature_name=list(features),
                         categorical_feature=list(categorical), free_raw_data=True)
    dvalid = lgb.Dataset(valid[0], valid[1], reference=dtrain)
    booster = lgb.train({**lightgbm_params(cfg), "metric": metric}, dtrain,
                        num_boost_round=cfg.max_rounds, valid_sets=[dvalid],
                        valid_names=["validation"],
                        callbacks=[lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)])
    best = max(1, booster.best_iteration)
    return lgb.Booster(model_str=booster.model_to_string(num_iteration=best))


SIMPLEST_FIRST = ("logistic regression", "blend", "lightgbm")
"""The candidates in order of flexibility; `choose` prefers the earlier ones."""


def choose(y: np.ndarray, raws: dict[str, np.ndarray], margin: float, level: float,
           say: Callable[[str], None] | None = None) -> str:
    """The candidate to serve among `raws` (validation scores per name of `SIMPLEST_FIRST`): a
    more flexible one only when it ranks validation better than every simpler one by more than
    `margin` (`train.linear_margin`) and by more than the validation's noise (the lower end of
    the paired bootstrap interval at `level`, `train.selection_interval`, above zero). On a
    few hundred leads the best of several settings often wins by noise alone."""
    names = [n for n in SIMPLEST_FIRST if n in raws]
    chosen = names[0]
    for name in names[1:]:
        better = True
        for simpler in names[:names.index(name)]:
            if level > 0:
                diff, low, high = paired_bootstrap(y, raws[name], raws[simpler], level=level)
            else:
                diff = float(roc_auc_score(y, raws[name]) - roc_auc_score(y, raws[simpler]))
                low = high = diff
            if say is not None:
                say(f"    {name} minus {simpler}: validation AUC {diff:+.4f} "
                    f"({level:.0%} interval {low:+.4f} to {high:+.4f})")
            better = better and diff > margin and low > 0
        if better:
            chosen = name
    return chosen


SEARCH_SPACE: dict[str, tuple[float | int, ...]] = {
    "num_leaves": (4, 7, 15, 31, 63),
    "min_data_in_leaf": (20, 50, 100, 200, 400),
    "learning_rate": (0.01, 0.02, 0.03, 0.05, 0.1),
    "feature_fraction": (0.5, 0.7, 0.8, 1.0),
    "bagging_fraction": (0.6, 0.8, 1.0),
    "lambda_l2": (0.0, 1.0, 10.0, 50.0),
}
"""Where the seeded random search looks: from stumps on a few thousand rows to deep trees."""


def candidate_settings(cfg: LightGBMConfig, trials: int) -> list[LightGBMConfig]:
    """The configured settings first, then `trials` distinct draws from `SEARCH_SPACE` (seeded
    by `cfg.seed`, so the same config tries the same candidates)."""
    rng = np.random.default_rng(cfg.seed)
    out = [cfg]
    seen = {tuple(cfg.model_dump().items())}
    for _ in range(trials * 20):
        if len(out) > trials:
            break
        update = {k: v[int(rng.integers(len(v)))] for k, v in SEARCH_SPACE.items()}
        cand = cfg.model_copy(update={k: type(getattr(cfg, k))(v) for k, v in update.items()})
        key = tuple(cand.model_dump().items())
        if key not in seen:
            seen.add(key)
            out.append(cand)
    return out


@dataclass(frozen=True)
class Candidate:
    """One LightGBM setting judged on the validation replay."""

    settings: LightGBMConfig
    rounds: int
    valid_auc: float
    booster: lgb.Booster


def fit_candidate(train: tuple[np.ndarray, np.ndarray], valid: tuple[np.ndarray, np.ndarray],
                  features: list[str], categorical: list[str],
                  cfg: LightGBMConfig) -> Candidate:
    """Boost on the encoded `train`, stopping early on ROC AUC over the encoded `valid`."""
    booster = _boost(train, valid, features, categorical, cfg, "auc")
    raw = cast(np.ndarray, booster.predict(valid[0], raw_score=True))
    return Candidate(cfg, booster.current_iteration(), roc_auc_score(valid[1], raw), booster)


def fit_linear(train: pd.DataFrame, features: list[str], cats: dict[str, tuple[str, ...]],
               c: float = 1.0) -> LinearModel:
    """Logistic regression (L2, `C = c`) on standardised inputs clipped ten training ranges
    beyond their training values, with missing-value indicators and one-hot categories, kept as
    a `LinearModel` that scores the bundle's own design matrix."""
    x = encode(train, features, cats)
    blocks: list[np.ndarray] = []
    plan: list[tuple[str, int, tuple[float, float, float, float, float] | None]] = []
    for j, name in enumerate(features):
        col = x[:, j]
        missing = np.isnan(col)
        if name in cats:
            k = len(cats[name])
            codes = np.where(missing, k, col).astype(np.int64)
            blocks.append(np.eye(k + 1)[codes])
            plan.append(("cat", k + 1, None))
            continue
        seen = col[~missing]
        med = float(np.median(seen)) if seen.size else 0.0
        # clipped ten training ranges beyond the training values: a wild value cannot swamp
        # the score, and a drifting input still extrapolates (where trees stop at their edge)
        lo, hi = (float(seen.min()), float(seen.max())) if seen.size else (0.0, 0.0)
        low, high = lo - 10 * (hi - lo), hi + 10 * (hi - lo)
        filled = np.clip(np.where(missing, med, col), low, high)
        mean, sd = float(filled.mean()), float(filled.std())
        scale = sd if sd > 0 else 1.0
        blocks.append(np.column_stack([(filled - mean) / scale, missing.astype(np.float64)]))
        plan.append(("num", 2, (low, high, med, mean, scale)))
    design = np.column_stack(blocks) if blocks else np.zeros((len(x), 0))
    lr = LogisticRegression(C=c, max_iter=2000).fit(design, train["label"].to_numpy())
    coef, at = lr.coef_[0], 0
    terms: list[NumericTerm | CategoryTerm] = []
    for kind, width, stats in plan:
        w = coef[at:at + width]
        at += width
        if kind == "cat":
            terms.append(CategoryTerm(tuple(float(v) for v in w[:-1]), float(w[-1])))
        else:
            if stats is None:  # never: numeric terms carry their statistics
                raise RuntimeError("a numeric term lost its statistics")
            low, high, med, mean, scale = stats
            terms.append(NumericTerm(low, high, med, mean, scale, float(w[0]), float(w[1])))
    model = LinearModel(tuple(features), tuple(terms), float(lr.intercept_[0]),
                        tuple([0.0] * len(terms)))
    contrib = model.predict(x, pred_contrib=True)[:, :-1]
    return LinearModel(model.names, model.terms, model.intercept,
                       tuple(float(m) for m in contrib.mean(axis=0)))


Fitted = lgb.Booster | LinearModel | BlendModel
"""A model `choose` can serve: LightGBM, the logistic regression or their blend."""


def candidates(tree: Fitted, linear: LinearModel | None, blend: bool) -> dict[str, Fitted]:
    """The models `choose` picks among, by their `SIMPLEST_FIRST` names: LightGBM, the
    logistic regression (when fitted) and, with `blend`, their even blend."""
    out: dict[str, Fitted] = {"lightgbm": tree}
    if linear is not None:
        out["logistic regression"] = linear
        if blend and isinstance(tree, lgb.Booster):
            out["blend"] = BlendModel(tree, linear)
    return out


def raw_scores(models: dict[str, Fitted], x: np.ndarray) -> dict[str, np.ndarray]:
    """Each candidate's log-odds on `x`; a blend's from its parts' scores, not predicted
    again."""
    raws = {k: cast(np.ndarray, m.predict(x, raw_score=True))
            for k, m in models.items() if not isinstance(m, BlendModel)}
    for k, m in models.items():
        if isinstance(m, BlendModel):
            raws[k] = m.weight * raws["lightgbm"] + (1 - m.weight) * raws["logistic regression"]
    return raws


def prefer_simpler(bundle: ModelBundle, train: pd.DataFrame, valid: pd.DataFrame,
                   cfg: TrainConfig) -> tuple[ModelBundle, dict[str, float]]:
    """The LightGBM bundle, a logistic regression on the same inputs, or their blend, as
    `choose` decides on the validation rows (each calibrated on validation the same way); with
    every candidate's AUC."""
    y = valid["label"].to_numpy()
    x_va = bundle.matrix(valid)
    linear = fit_linear(train, list(bundle.features), bundle.categories)
    models = candidates(bundle.booster, linear, cfg.blend_candidate)
    raws = raw_scores(models, x_va)
    aucs = {k: float(roc_auc_score(y, r)) for k, r in raws.items()}
    name = choose(y, raws, cfg.linear_margin, cfg.selection_interval)
    if name == "lightgbm":
        return bundle, aucs
    meta = {**bundle.meta, "settings": {"model": name}}
    if name == "logistic regression":
        meta["best_iteration"] = 1
    return ModelBundle(bundle.kind, models[name], bundle.features, bundle.categories,
                       fit_calibrator(raws[name], y), meta), aucs


@dataclass(frozen=True)
class ReplaySets:
    """What one fit at an origin sees: `train` (snapshots whose horizon closed by the validation
    origin), `valid` (the open book at the validation origin, labelled), `refit` (snapshots
    whose horizon closed by the origin itself)."""

    train: pd.DataFrame
    valid: pd.DataFrame
    refit: pd.DataFrame


def select_and_refit(kind: str, sets: ReplaySets, features: list[str], categorical: list[str],
                     cfg: TrainConfig, meta: dict | None = None,
                     say: Callable[[str], None] | None = None,
                     ) -> tuple[ModelBundle, pd.DataFrame]:
    """Judge every candidate setting on the validation replay (`sets.valid`), keep the best with
    its rounds, fit the calibration on its validation scores, then refit it on `sets.refit`
    (which adds the newest labelled snapshots). Returns the bundle and the candidates' table
    (setting, rounds, validation AUC, chosen)."""
    train, valid, refit = sets.train, sets.valid, sets.refit
    cats = vocabularies(train, categorical)
    # encoded once for every candidate
    x_valid = encode(valid, features, cats)
    encoded = ((encode(train, features, cats), train["label"].to_numpy()),
               (x_valid, valid["label"].to_numpy()))
    found = []
    for i, settings in enumerate(candidate_settings(cfg.lightgbm, cfg.search_trials)):
        found.append(fit_candidate(*encoded, features, categorical, settings))
        if say is not None:
            say(f"[{kind}] candidate {i + 1}: validation-replay AUC {found[-1].valid_auc:.4f} "
                f"({found[-1].rounds} rounds)")
    best = max(found, key=lambda c: c.valid_auc)
    y_valid = valid["label"].to_numpy()
    linear = fit_linear(train, features, cats) if cfg.linear_candidate else None
    raws = raw_scores(candidates(best.booster, linear, cfg.blend_candidate), x_valid)
    aucs = {k: float(roc_auc_score(y_valid, r)) for k, r in raws.items()}
    if say is not None:
        for name in ("logistic regression", "blend"):
            if name in aucs:
                say(f"[{kind}] {name}: validation-replay AUC {aucs[name]:.4f}")
    name = choose(y_valid, raws, cfg.linear_margin, cfg.selection_interval, say)
    calibrator = fit_calibrator(raws[name], y_valid)
    info = dict(meta or {})
    booster: lgb.Booster | LinearModel | BlendModel
    refit_cats = vocabularies(refit, categorical)
    if name == "logistic regression":
        booster = fit_linear(refit, features, refit_cats)
        info["settings"] = {"model": name}
    else:
        # the rounds as validated: the calibration was fitted on this many rounds' raw scores
        # (scaling them with the extra rows widened the raw scores and broke it: ECE 0.085
        # against 0.062 on the small world of bench_quality)
        tree, refit_cats = refit_lightgbm(refit, features, categorical, best.settings,
                                          best.rounds)
        info["settings"] = best.settings.model_dump()
        booster = tree
        if name == "blend":
            booster = BlendModel(tree, fit_linear(refit, features, refit_cats))
            info["settings"]["model"] = name
    info["best_iteration"] = int(booster.current_iteration())
    rows = [{"model": "lightgbm", **{k: getattr(c.settings, k) for k in SEARCH_SPACE},
             "rounds": c.rounds, "validation_auc": round(c.valid_auc, 5),
             "chosen": (c is best) and name == "lightgbm"} for c in found]
    rows += [{"model": n, "validation_auc": round(aucs[n], 5), "chosen": name == n}
             for n in ("logistic regression", "blend") if n in aucs]
    table = pd.DataFrame(rows)
    return ModelBundle(kind, booster, tuple(features), refit_cats, calibrator, info), table


def refit_lightgbm(train: pd.DataFrame, features: list[str], categorical: list[str],
                   cfg: LightGBMConfig, rounds: int) -> tuple[lgb.Booster, dict]:
    """Boost a fixed number of rounds on all of `train` (no holdout); returns the booster and
    the category vocabularies to encode new rows with. Uncalibrated: for ranking comparisons."""
    cats = vocabularies(train, categorical)
    data = lgb.Dataset(encode(train, features, cats), train["label"].to_numpy(),
                       feature_name=list(features), categorical_feature=list(categorical))
    return lgb.train(lightgbm_params(cfg), data, num_boost_round=max(1, rounds)), cats


class LogisticBaseline:
    """Scikit-learn logistic regression on the same features (imputed, scaled, one-hot),
    calibrated on validation like the main model."""

    def __init__(self, features: list[str], categorical: list[str]) -> None:
        self.features = features
        self.categorical = categorical

    def fit(self, train: pd.DataFrame, valid: pd.DataFrame) -> LogisticBaseline:
        """Fit the regression on `train` and its calibration on `valid`; returns itself."""
        numeric = [f for f in self.features if f not in self.categorical]
        prep = ColumnTransformer([
            ("num", make_pipeline(SimpleImputer(strategy="median", add_indicator=True,
                                                keep_empty_features=True),
                                  StandardScaler()), numeric),
            ("cat", make_pipeline(SimpleImputer(strategy="constant", fill_value="missing"),
                                  OneHotEncoder(handle_unknown="ignore", min_frequency=20)),
             self.categorical),
        ])
        self.pipeline_ = Pipeline([("prep", prep),
                                   ("lr", LogisticRegression(max_iter=300, C=1.0))])
        self.pipeline_.fit(self._frame(train), train["label"].to_numpy())
        self.calibrator_ = fit_calibrator(self._raw(valid), valid["label"].to_numpy())
        return self

    def _frame(self, df: pd.DataFrame) -> pd.DataFrame:
        out = df[self.features].copy()
        for c in self.categorical:
            out[c] = out[c].astype(object).where(out[c].notna(), "missing").astype(str)
        for c in self.features:
            if c not in self.categorical:
                out[c] = out[c].astype("float64")
        return out

    def _raw(self, df: pd.DataFrame) -> np.ndarray:
        return self.pipeline_.decision_function(self._frame(df))

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, one per row of `df`."""
        return self.calibrator_(self._raw(df))

    def predict_uncalibrated(self, df: pd.DataFrame) -> np.ndarray:
        """The regression's own probabilities (for ranking comparisons)."""
        return self.pipeline_.predict_proba(self._frame(df))[:, 1]


def rule_score(kind: str, df: pd.DataFrame) -> np.ndarray:
    """The simple rule a sales team might use without LeadLens (touches and source)."""
    source_rate = df["source_past_conversion_rate"].astype("float64").fillna(0.0).to_numpy() \
        if "source_past_conversion_rate" in df else np.zeros(len(df))
    touches = df["outbound_touches"].astype("float64").fillna(0.0).to_numpy() \
        if "outbound_touches" in df else np.zeros(len(df))
    if kind in ("dropout", "dropout_expected"):
        responded = df["has_responded"].astype("float64").fillna(0.0).to_numpy()
        return (1.0 - responded) * (1.0 + touches) - source_rate
    if kind == "lead_quality":
        return source_rate
    return source_rate * (1.0 + 0.1 * np.minimum(touches, 10.0))


class RuleBaseline:
    """`rule_score`, calibrated on validation."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def fit(self, valid: pd.DataFrame) -> RuleBaseline:
        """Calibrate the rule on `valid`; returns itself."""
        score = rule_score(self.kind, valid)
        self.constant_ = bool(np.ptp(score) == 0) if len(score) else True
        self.has_source_ = "source_past_conversion_rate" in valid
        self.calibrator_ = fit_calibrator(score, valid["label"].to_numpy())
        return self

    def constant_note(self) -> str:
        """Empty, or why the rule scored every lead alike (its AUC is then 0.5 by design)."""
        if not self.constant_:
            return ""
        why = "no source history" if not self.has_source_ else "no variation in its inputs"
        return f"; the rule is constant here: {why}"

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """Calibrated probabilities, one per row of `df`."""
        return self.calibrator_(rule_score(self.kind, df))
