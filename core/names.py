"""The one module that spells model kinds, registered model names, the alias and MLflow tag keys.

Writers (training, promotion) and readers (CLI, service, dashboard, rep report) import these
names, so a tag written under one key can never be read under another
(`tests/core/test_names.py` greps the tree for stray spellings).
"""

from __future__ import annotations

from typing import Final, Literal

ModelKind = Literal["conversion", "dropout", "lead_quality", "dropout_expected"]

CONVERSION: Final = "conversion"
DROPOUT: Final = "dropout"
LEAD_QUALITY: Final = "lead_quality"
DROPOUT_EXPECTED: Final = "dropout_expected"
MODEL_KINDS: Final[tuple[ModelKind, ...]] = (CONVERSION, DROPOUT, LEAD_QUALITY, DROPOUT_EXPECTED)
SCORING_KINDS: Final[tuple[ModelKind, ...]] = (CONVERSION, DROPOUT)
"""What marketing and managers are shown: scores and dropout risk."""
JUDGING_KINDS: Final[tuple[ModelKind, ...]] = (LEAD_QUALITY, DROPOUT_EXPECTED)
"""Rep-blind expectations the rep report compares reps against."""
ACTIVITY_KINDS: Final[tuple[ModelKind, ...]] = (DROPOUT, DROPOUT_EXPECTED)
"""Models that learn from outbound touches and need an activity log."""

REGISTERED_NAMES: Final[dict[str, str]] = {
    CONVERSION: "leadlens-conversion",
    DROPOUT: "leadlens-dropout",
    LEAD_QUALITY: "leadlens-lead-quality",
    DROPOUT_EXPECTED: "leadlens-dropout-expected",
}
"""Model kind -> registered model name in MLflow (also the BentoML store's model name)."""

EXPERIMENT: Final = "leadlens"
"""The MLflow experiment every training run is logged to."""
CHAMPION: Final = "champion"
"""The alias the promotion gate moves and every consumer loads."""
BUNDLE_ARTIFACT: Final = "bundle"
"""Where a registered version keeps its plain-file model bundle."""


class RunTag:
    """Tag keys on MLflow runs."""

    SAMPLE: Final = "leadlens.sample"  # trained from Spark: the share of the examples fitted
    MODEL: Final = "leadlens.model"
    UNTIL: Final = "leadlens.until"
    SKIPPED: Final = "leadlens.skipped"
    """On the parent run: the models not trained; on a model's run: why it was not."""
    LEAKAGE_FLAGS: Final = "leakage_flags"
    PID: Final = "leadlens.pid"
    """The training process, with `HOST`: a RUNNING run whose process is gone was killed."""
    HOST: Final = "leadlens.host"
    REAPED: Final = "leadlens.reaped"
    """Why a RUNNING run was marked FAILED by a later command."""


class VersionTag:
    """Tag keys on registered model versions."""

    KIND: Final = "kind"
    VALID_FROM: Final = "valid_from"
    TEST_FROM: Final = "test_from"
    UNTIL: Final = "until"
    TEST_ROC_AUC: Final = "test_roc_auc"
    TEST_PR_AUC: Final = "test_pr_auc"
    TEST_ECE: Final = "test_ece"
    TEST_BRIER: Final = "test_brier"
    TEST_ROWS: Final = "test_rows"
    TEST_DIGEST: Final = "test_digest"
    LEAKAGE_FLAGS: Final = "leakage_flags"
    PROMOTED_AT: Final = "promoted_at"
    PROMOTED_FROM: Final = "promoted_from"
    PROMOTION_METRICS: Final = "promotion_metrics"
    PROMOTION_KIND: Final = "promotion_kind"
    FORCED_REASON: Final = "promotion_forced_reason"
    BUNDLE_SHA256: Final = "bundle_sha256"
    """The SHA-256 of the version's `bundle.json` (which holds its model files' digests)."""


def registered_name(kind: str) -> str:
    """The registered model name of a model kind; an unknown kind names the known ones."""
    try:
        return REGISTERED_NAMES[kind]
    except KeyError:
        raise ValueError(f"unknown model kind {kind!r}: one of {', '.join(MODEL_KINDS)}") from None
