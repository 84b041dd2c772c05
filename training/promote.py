"""`leadlens promote`: move `@champion` only to a model that passes the gates.

The candidate and the current champion are scored on the same out-of-time test: the candidate's
test leads (rebuilt from the warehouse with the split recorded on the candidate's version) with
features as of each snapshot. The candidate must reach the configured AUC floor and calibration
ceiling and must not fall behind the champion by more than the tolerance. `--version N` below the
champion is a rollback (the absolute gates still apply); `--force` skips the gates and records
the reason on the version.

The calibration ceiling does not keep a champion that fails it on the newest resolved leads: a
replay-trained candidate's ECE is that of a fit calibrated a horizon before its test, so after
the base rate moves every retrain fails the ceiling for about two horizons while the champion,
calibrated even earlier, drifts further off. When a candidate whose data ends later than the
champion's fails only the ceiling, the champion is scored on the candidate's test leads (it may
have learned some of their outcomes, which can only flatter it); if its ECE there is above the
ceiling even at the low end of its 90% interval and above the candidate's, the refusal becomes a
note and the candidate, whose calibration is fitted on those newest outcomes, is promoted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

import numpy as np
import pandas as pd

from core.calibration_metrics import bootstrap_ece, expected_calibration_error
from core.model_bundle import ModelBundle
from core.names import CHAMPION, VersionTag
from core.registry import VersionInfo, champion_version, load_version, model_versions
from core.settings import PromoteConfig, Runtime
from core.warehouse import Warehouse
from features.labels import Examples, open_book
from training.dataset import build_dataset, with_features
from training.evaluate import score_metrics
from training.examples import TimeSplit
from training.sources import examples_for
from training.specs import SPECS
from training.tracking import setup


class PromotionError(ValueError):
    """Promotion cannot even be judged (no such model or version, bad arguments)."""


@dataclass
class Decision:
    """The outcome of a promotion: candidate, champion, whether it moved, why, and the metrics."""

    name: str
    candidate: int
    champion: int | None
    promoted: bool
    reasons: list[str] = field(default_factory=list)
    candidate_metrics: dict[str, float] = field(default_factory=dict)
    champion_metrics: dict[str, float] = field(default_factory=dict)
    forced: bool = False
    champion_on_own_replay: bool = False
    champion_until: str | None = None
    """The champion's figures are its own replay's (it had seen this test's outcomes)."""

    def summary(self) -> str:
        """The decision as lines of text: the verdict, both models' metrics, the reasons."""
        head = (f"{self.name}: v{self.candidate} is now @{CHAMPION}" if self.promoted else
                f"{self.name}: v{self.candidate} NOT promoted")
        if self.champion is not None:
            head += f" (champion was v{self.champion})"
        lines = [head]
        if self.candidate_metrics:
            c = self.candidate_metrics
            lines.append(f"  candidate v{self.candidate}: AUC {c['roc_auc']:.4f}, "
                         f"ECE {c['ece']:.4f} on {int(c['rows']):,} test examples")
        if self.champion_metrics:
            c = self.champion_metrics
            where = ("on its own replay" if self.champion_on_own_replay else
                     "on the same examples")
            lines.append(f"  champion  v{self.champion}: AUC {c['roc_auc']:.4f}, "
                         f"ECE {c['ece']:.4f} {where}")
        lines += [f"  - {r}" for r in self.reasons]
        return "\n".join(lines)


def test_set(runtime: Runtime, kind: str, tags: dict[str, str],
             replay_origin: str | None = None) -> pd.DataFrame:
    """The candidate's test examples with their features, rebuilt from the warehouse: the leads
    open at its replay origin (replay-trained models), or its out-of-time test split."""
    try:
        split = TimeSplit(pd.Timestamp(tags[VersionTag.VALID_FROM]),
                          pd.Timestamp(tags[VersionTag.TEST_FROM]),
                          pd.Timestamp(tags[VersionTag.UNTIL]))
    except KeyError as err:
        raise PromotionError(f"the version lacks the tag {err}; was it trained by LeadLens?") \
            from None
    with Warehouse(runtime.warehouse_path, read_only=True) as wh:
        if replay_origin is not None:
            book = open_book(wh.con, runtime.settings.train, pd.Timestamp(replay_origin))
            return with_features(wh.con, book.frame, runtime.settings.engagement,
                                 list(wh.attribute_types()))
        ex = examples_for(kind, wh.con, runtime.settings, split.until)
        test = ex.frame[ex.frame["created_at"] >= split.test_from]
        ex = Examples(test.reset_index(drop=True), ex.excluded)
        return build_dataset(wh.con, ex, split, runtime.settings.engagement,
                             list(wh.attribute_types()))


def _candidate(name: str, version: int | None) -> tuple[dict[int, VersionInfo], int]:
    """The registered versions of `name` and the candidate: `version`, or the latest."""
    versions = {v.version: v for v in model_versions(name)}
    if not versions:
        raise PromotionError(f"no versions of {name} yet: run `leadlens train` first")
    candidate = version if version is not None else max(versions)
    if candidate not in versions:
        raise PromotionError(f"{name} has no version {candidate} "
                             f"(versions: {', '.join(map(str, sorted(versions)))})")
    return versions, candidate


def _check_run_finished(info: VersionInfo) -> None:
    """Refuse (even forced) a version whose training run did not finish: killed mid-way, its
    files and figures may be partial."""
    from mlflow import MlflowClient

    if info.run_id is None:
        return
    status = MlflowClient().get_run(info.run_id).info.status
    if status != "FINISHED":
        raise PromotionError(f"{info.name} v{info.version}: its training run {info.run_id} "
                             f"ended {status}, not FINISHED; train again")


def _judge(decision: Decision, gates: PromoteConfig, kind: str, cand: ModelBundle,
           data: pd.DataFrame, rollback: bool) -> None:
    """Score the candidate (and the champion) on the test set; add a reason per gate failed.

    A replay-trained candidate keeps the figures of its replay (the production fit has seen
    the replay's outcomes: scoring it again there would flatter it); the champion is scored
    on the same leads."""
    name, champ = decision.name, decision.champion
    y = data["label"].to_numpy()
    if cand.meta.get("replay_origin") and cand.meta.get("test_metrics"):
        decision.candidate_metrics = dict(cand.meta["test_metrics"])
    else:
        decision.candidate_metrics = score_metrics(y, cand.predict(data))
    cm = decision.candidate_metrics
    floor = getattr(gates.min_auc, kind)
    if cm["roc_auc"] < floor:
        decision.reasons.append(f"AUC {cm['roc_auc']:.4f} is below the floor {floor}")
    champion = _Champion(name, champ, data) if champ is not None else None
    newer = champion is not None and _data_ends_later(cand, champion.bundle)
    _noise_gates(decision, gates, cand.meta.get("test_noise"), cm, y,
                 champion.scores if champion is not None and newer else None)
    _leakage_gate(decision, cand.meta.get("leakage") or {})
    if champion is not None:
        _champion_figures(decision, champion, cand)
        hm = decision.champion_metrics
        other_book = decision.champion_on_own_replay and (
            decision.champion_until != cand.meta.get("until"))
        if other_book:  # its replay judged other leads at another time: not comparable
            decision.reasons.append(
                f"note: the champion's AUC {hm['roc_auc']:.4f} is from its own replay, on other "
                "leads at another time; the tolerance gate is not applied")
        elif hm and not rollback and cm["roc_auc"] < hm["roc_auc"] - gates.auc_tolerance:
            decision.reasons.append(
                f"AUC {cm['roc_auc']:.4f} is worse than the champion's {hm['roc_auc']:.4f} "
                f"by more than the tolerance {gates.auc_tolerance}")


@dataclass
class _Champion:
    """The champion, loaded once and scored once on the candidate's test leads when asked."""

    name: str
    version: int
    data: pd.DataFrame
    _scores: np.ndarray | None = field(default=None, repr=False)

    @cached_property
    def bundle(self) -> ModelBundle:
        """The champion's bundle (the shared, checked loader)."""
        return load_version(self.name, self.version)

    def scores(self) -> np.ndarray:
        """Its scores on the test leads; ValueError when it cannot score them."""
        if self._scores is None:
            self._scores = self.bundle.predict(self.data)
        return self._scores


def _data_ends_later(cand: ModelBundle, champion: ModelBundle) -> bool:
    """The candidate's data ends after the champion's."""
    a, b = cand.meta.get("until"), champion.meta.get("until")
    return bool(a and b and pd.Timestamp(a) > pd.Timestamp(b))


def _champion_further_off(decision: Decision, gates: PromoteConfig, y: np.ndarray,
                          champion_scores: Callable[[], np.ndarray] | None) -> str | None:
    """Why the calibration ceiling does not keep the champion, or None: scored on the same
    test leads, it is above the ceiling too (at the low end of its 90% interval, with enough
    positives) and further off than the candidate."""
    if champion_scores is None or int(y.sum()) < gates.min_positives_ece:
        return None
    try:
        scores = champion_scores()
    except ValueError:  # noted with the champion's figures
        return None
    ece = expected_calibration_error(y, scores)
    low, _high = bootstrap_ece(y, scores)
    if low <= gates.max_ece or ece <= decision.candidate_metrics.get("ece", float("inf")):
        return None
    return (f"the champion v{decision.champion} is further off on these leads (ECE {ece:.4f}, "
            f"90% interval from {low:.4f}) and this candidate's calibration is fitted on newer "
            "outcomes: the ceiling does not keep the champion")


def _champion_figures(decision: Decision, champion: _Champion, cand: ModelBundle) -> None:
    """The champion's figures to compare with: scored on the candidate's test, unless it was
    trained on outcomes inside that test's window (its data ends after the candidate's replay
    origin, as when models are retrained every few weeks): scored there it would be judged on
    answers it has seen, so its own replay figures are used instead."""
    meta = champion.bundle.meta
    until, origin = meta.get("until"), cand.meta.get("replay_origin")
    decision.champion_until = until
    if until and origin and meta.get("test_metrics") and (
            pd.Timestamp(until) > pd.Timestamp(origin)):
        decision.champion_metrics = dict(meta["test_metrics"])
        decision.champion_on_own_replay = True
        decision.reasons.append(
            f"note: the champion v{champion.version} learned outcomes up to {str(until)[:10]}, "
            f"inside this test's window (from {str(origin)[:10]}): compared by its own replay "
            "figures")
        return
    try:
        decision.champion_metrics = score_metrics(y=champion.data["label"].to_numpy(),
                                                  p=champion.scores())
    except ValueError as err:
        decision.reasons.append(f"note: the champion cannot score this test set ({err})")


def _leakage_gate(decision: Decision, flags: dict[str, dict]) -> None:
    """Refuse a candidate the leakage audit flagged on blocking evidence (a feature alone near
    perfect, an attribute whose emptiness separates the outcomes); the attribution-share flag
    is shown as a note."""
    for feature, info in flags.items():
        why = str(info.get("reason", ""))
        if info.get("blocking"):
            decision.reasons.append(
                f"possible leakage: {feature} {why}; leave it out (`exclude.leaky` in the "
                "source mapping, or drop the column) and retrain, or --force with a reason")
        else:
            decision.reasons.append(f"note: possible leakage: {feature} {why}")


def _noise_gates(decision: Decision, gates: PromoteConfig, noise: dict | None,
                 cm: dict[str, float], y: np.ndarray,
                 champion_scores: Callable[[], np.ndarray] | None = None) -> None:
    """The gates that respect the test's size: never a candidate credibly below the logistic
    baseline, and calibration judged by its interval, with enough positives."""
    positives = int(noise["positives"]) if noise else int(y.sum())
    negatives = int(noise["negatives"]) if noise else int(len(y) - y.sum())
    decision.reasons.append(f"note: judged on {positives} positives and {negatives} negatives")
    if noise and noise.get("auc_vs_logistic_high") is not None \
            and float(noise["auc_vs_logistic_high"]) < 0:
        decision.reasons.append(
            f"AUC is credibly below the logistic baseline's: difference "
            f"{float(noise['auc_vs_logistic']):+.4f} (90% interval "
            f"{float(noise['auc_vs_logistic_low']):+.4f} to "
            f"{float(noise['auc_vs_logistic_high']):+.4f})")
    if positives < gates.min_positives_ece:
        decision.reasons.append(f"note: calibration not judged: {positives} positives (fewer "
                                f"than promote.min_positives_ece = {gates.min_positives_ece})")
        return
    low = float(noise["ece_low"]) if noise else cm["ece"]
    if low > gates.max_ece:
        refusal = (f"calibration error {cm['ece']:.4f} is above the ceiling {gates.max_ece}"
                   + (f" even at the low end of its 90% interval ({low:.4f})" if noise else ""))
        # `champion_scores`: given for a candidate whose data ends later than the champion's
        off = _champion_further_off(decision, gates, y, champion_scores)
        decision.reasons.append(f"note: {refusal}; {off}" if off else refusal)


def promote(runtime: Runtime, kind: str, version: int | None = None, force: bool = False,
            reason: str | None = None) -> Decision:
    """Judge a candidate against the gates and the champion; move the alias if it passes."""
    from mlflow import MlflowClient

    if kind not in SPECS:
        raise PromotionError(f"unknown model {kind!r}; choose from {', '.join(SPECS)}")
    if force and not (reason and reason.strip()):
        raise PromotionError("--force needs --reason TEXT (it is recorded on the version)")
    setup(runtime)
    name = SPECS[kind].registered_name
    versions, candidate = _candidate(name, version)
    champ = champion_version(name)
    decision = Decision(name, candidate, champ, promoted=False)
    if champ == candidate:
        decision.reasons.append(f"v{candidate} already holds @{CHAMPION}")
        return decision

    _check_run_finished(versions[candidate])
    cand = load_version(name, candidate)
    data = test_set(runtime, kind, versions[candidate].tags, cand.meta.get("replay_origin"))
    y = data["label"].to_numpy()
    if y.min() == y.max():
        raise PromotionError("the candidate's test set has a single class; cannot judge it")
    rollback = champ is not None and version is not None and candidate < champ
    _judge(decision, runtime.settings.promote, kind, cand, data, rollback)
    cm = decision.candidate_metrics
    blocking = [r for r in decision.reasons if not r.startswith("note:")]
    if blocking and not force:
        return decision
    client = MlflowClient()
    client.set_registered_model_alias(name, CHAMPION, str(candidate))
    now = datetime.now(UTC).isoformat(timespec="seconds")
    tags = {VersionTag.PROMOTED_AT: now,
            VersionTag.PROMOTED_FROM: str(champ) if champ else "none",
            VersionTag.PROMOTION_METRICS: f"auc={cm['roc_auc']:.4f},ece={cm['ece']:.4f}"}
    if rollback:
        tags[VersionTag.PROMOTION_KIND] = "rollback"
    if force:
        tags[VersionTag.FORCED_REASON] = reason.strip()  # type: ignore[union-attr]
        decision.forced = True
        decision.reasons.append(f"forced past the gates: {reason.strip()}")  # type: ignore[union-attr]
    for k, v in tags.items():
        client.set_model_version_tag(name, str(candidate), k, v)
    decision.promoted = True
    if not blocking:
        decision.reasons.append("passed every gate" + (" (rollback)" if rollback else ""))
    return decision
