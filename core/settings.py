"""Configuration: one YAML file validated once, at the edge, into frozen typed objects.

Defaults live in the models below and are mirrored by `configs/leadlens.yaml` (a test keeps the
two equal). Locations and secrets come from the environment, never from the YAML file:
`LEADLENS_HOME` (all state; default `./.leadlens`) and `LEADLENS_CONFIG` (a config file used
when no `--config` is given).
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

from core.contract import DEFAULT_PERSONAL_DATA_COLUMNS
from core.date_window import DateWindow

HOME_ENV = "LEADLENS_HOME"
CONFIG_ENV = "LEADLENS_CONFIG"
TRACKING_ENV = "MLFLOW_TRACKING_URI"
DEFAULT_HOME = Path(".leadlens")
MAX_BATCH_LIMIT = 10_000
"""The largest `serve.max_batch` allowed (the request schema's own ceiling)."""


class ConfigError(ValueError):
    """A configuration file that cannot be used; the message names the file and the key."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)


def iso_text(value: Any, what: str) -> Any:
    """A config value that must be an ISO-8601 date or timestamp, kept as text (YAML reads a
    bare date as a date: it becomes ISO text again); None stays None. ValueError otherwise."""
    if isinstance(value, (datetime.date, datetime.datetime)):
        value = value.isoformat()
    if value is None:
        return value
    if not isinstance(value, str):
        raise ValueError(f"{what}: an ISO-8601 date or timestamp such as 2025-06-30")
    try:
        datetime.datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what}: {value!r} is not an ISO-8601 date or timestamp") from None
    return value


class DataConfig(_Section):
    """The `data` section: facts about the export that the data cannot tell."""

    cutoff: str | None = None
    """When the export was taken (ISO-8601, UTC). `leadlens ingest` records it like `--as-of`
    (which wins when both are given): training's `until` and the default `as_of` of scoring."""

    @field_validator("cutoff", mode="before")
    @classmethod
    def _timestamp(cls, v: Any) -> Any:
        return iso_text(v, "cutoff")


class IngestConfig(_Section):
    """The `ingest` section: quarantine tolerance and the personal-data columns dropped."""

    max_quarantine_share: float = Field(0.05, ge=0.0, le=1.0)
    """A table with a larger share of quarantined rows fails the whole ingest."""
    personal_data_columns: tuple[str, ...] = DEFAULT_PERSONAL_DATA_COLUMNS
    """Column names (matched as whole name tokens) dropped at ingestion as personal data (a
    column of yes/no values only, such as a consent flag, is kept)."""
    keep_columns: tuple[str, ...] = ()
    """Columns kept although their name matches `personal_data_columns` (you checked them)."""
    earliest_date: str = "1990-01-01"
    """Timestamps before this are not believed (a 1900 date is a typo): ingestion quarantines
    the row (`implausible_date`) and the service answers 400."""
    max_days_ahead: float = Field(1.0, ge=0.0)
    """... nor timestamps more than this many days after now (clocks differ by hours)."""

    @field_validator("earliest_date", mode="before")
    @classmethod
    def _iso_earliest(cls, v: Any) -> Any:
        return iso_text(v, "earliest_date")

    def date_window(self) -> DateWindow:
        """The plausible-date window these settings describe."""
        return DateWindow(datetime.datetime.fromisoformat(self.earliest_date)
                          .replace(tzinfo=None), self.max_days_ahead)


class SimulateConfig(_Section):
    """The `simulate` section: size, seed and rep make-up of the demo CRM."""

    leads: int = Field(20_000, ge=10)
    reps: int = Field(40, ge=2)
    months: int = Field(18, ge=1, le=120)
    seed: int = 7
    start: str = "2025-01-01"
    """First day of the simulated CRM (ISO date)."""
    rep_skill_sd: float = Field(1.0, ge=0.0)
    """Spread of rep skill (log-odds effect on replies, meetings and wins)."""
    weak_rep_share: float = Field(0.0, ge=0.0, le=1.0)
    """Share of reps made clearly weak (skill `weak_rep_skill`, little follow-up discipline)."""
    weak_rep_skill: float = -1.5
    discipline_spread: float = Field(1.0, ge=0.0, le=1.0)
    """Spread of follow-up discipline around its mean (1: the full natural spread)."""
    lead_skill_skew: float = 0.0
    """How lead quality follows rep skill: > 0 gives better reps better leads, < 0 worse."""


class EngagementConfig(_Section):
    """The `engagement` section: feature windows and the dormant, quiet and decay spans."""

    windows_days: tuple[int, ...] = (7, 30, 90)
    """Look-back windows for activity counts, in days."""
    dormant_days: int = Field(30, ge=1)
    """A touch after this many days without any touch re-engages a dormant lead."""
    quiet_days: int = Field(14, ge=1)
    """A rep who has not touched a lead for this many days has gone quiet on it."""
    decay_half_life_days: float = Field(14.0, gt=0)
    """Half-life of the time-decayed engagement score."""
    fifth_followup: int = Field(5, ge=1)
    """The follow-up depth whose reach the rep metrics report."""
    response_outcomes: tuple[str, ...] = ("connected",)
    """Outcomes of an outbound call that count as a response (the lead picked up and talked),
    besides every inbound activity."""
    history_days: int = Field(365, ge=1)
    """Rep and source track records count the leads resolved in this many days before as_of:
    a rolling window, so the inputs do not grow with the calendar."""
    open_lead_expiry_days: int | None = Field(None, ge=1)
    """None: a lead enters the rep and source track records when it converts or is lost. A
    number N: a lead still without an outcome N days after creation counts as not converted
    then (and only conversions within N days count as won). Set automatically to
    `train.horizon_days` for an export that records no losses (won dates only), where a
    track record would otherwise count wins alone."""


class LightGBMConfig(_Section):
    """The `train.lightgbm` section: booster parameters and early stopping."""

    # regularised for CRMs of a few thousand leads: small trees, large leaves, subsampling
    learning_rate: float = Field(0.03, gt=0, le=1)
    num_leaves: int = Field(15, ge=2)
    min_data_in_leaf: int = Field(100, ge=1)
    feature_fraction: float = Field(0.8, gt=0, le=1)
    bagging_fraction: float = Field(0.8, gt=0, le=1)
    """Share of rows each tree sees (resampled every round; 1 turns it off)."""
    lambda_l2: float = Field(10.0, ge=0)
    max_rounds: int = Field(2000, ge=1)
    """Upper bound on boosting rounds; early stopping on validation picks the number."""
    early_stopping_rounds: int = Field(100, ge=1)
    early_stopping_metric: Literal["binary_logloss", "auc"] = "binary_logloss"
    """What early stopping watches on validation. `auc` judges ranking only (calibration is
    fitted afterwards): steadier when the conversion rate drifts between the splits."""
    seed: int = 7


class TrainConfig(_Section):
    """The `train` section: examples, labels, splits, class minimums and leakage checks."""

    conversion_examples: Literal["calendar", "creation"] = "calendar"
    """`calendar`: every lead open on each snapshot date, whatever its age (the population that
    gets scored), judged on a replay; `creation`: one example per lead at its creation, with a
    time split (flat exports without an activity history)."""
    snapshot_every_days: int = Field(14, ge=1)
    """Calendar snapshots: one every this many days, counted back from the last date whose
    horizon is observed."""
    max_snapshots_per_lead: int = Field(12, ge=1)
    """A lead open for long keeps at most this many snapshots, evenly spaced over its open
    life, so long-open leads do not dominate training."""
    search_trials: int = Field(6, ge=0, le=200)
    """LightGBM settings tried besides `train.lightgbm` (seeded random search), each judged on
    the validation replay; 0 keeps the configured settings."""
    linear_candidate: bool = True
    """Also fit a logistic regression on the same inputs; whichever ranks the validation rows
    better is served (false: LightGBM only)."""
    blend_candidate: bool = True
    """With `linear_candidate`, also judge an even blend of the two (the mean of their log-odds):
    it lowers the variance of either alone, on small books and under drift."""
    selection_interval: float = Field(0.9, ge=0, lt=1)
    """A more flexible candidate must also beat each simpler one by more than the validation's
    noise: the lower end of this paired bootstrap interval of the AUC difference above zero (0:
    the margin alone decides)."""
    linear_margin: float = Field(0.005, ge=0, le=0.1)
    """A more flexible candidate (blend over logistic regression, LightGBM over both) is chosen
    only when its validation AUC is higher by more than this: the best of several LightGBM
    settings is flattered by being the best (and the simpler model extrapolates under
    drift)."""
    horizon_days: int = Field(90, ge=1)
    """Conversion label: converted within this many days after the snapshot."""
    dropout_touches: int = Field(4, ge=1)
    """Dropout examples: outbound touches number 1 to this."""
    dropout_window_days: int = Field(14, ge=1)
    """Dropout label: no further outbound touch within this many days while the lead is open."""
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)
    """Train, validation and out-of-time test shares of the leads, in order of creation."""
    min_per_class: int = Field(40, ge=1)
    """Refuse to train with fewer positives or negatives than this among training examples."""
    min_per_class_eval: int = Field(10, ge=1)
    """... and fewer than this in the validation or the test split."""
    max_category_share: float = Field(0.5, gt=0, le=1.0)
    """A text lead attribute with more distinct values than this share of the leads that have
    one is free text (notes, names), not a model input."""
    leakage_auc: float = Field(0.9, gt=0.5, le=1.0)
    """A feature that alone reaches this AUC is flagged as possible leakage."""
    leakage_shap_share: float = Field(0.5, gt=0, le=1.0)
    """A feature holding more than this share of total |SHAP| is flagged as possible leakage..."""
    leakage_shap_min_features: int = Field(10, ge=1)
    """... in a model with at least this many inputs (with four inputs, one holding half of the
    attributions is normal, not a sign of leakage)."""
    leakage_missing_gap: float = Field(0.5, gt=0, le=1.0)
    """A lead attribute whose share of empty values differs by at least this between converted
    and other leads (mostly empty for one outcome, filled for the other) is flagged as probably
    filled after the fact."""
    shap_sample: int = Field(5000, ge=100)
    """Test rows explained for the SHAP summary and the leakage audit."""
    lightgbm: LightGBMConfig = LightGBMConfig()

    @field_validator("split_fractions")
    @classmethod
    def _fractions(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if min(v) <= 0 or abs(sum(v) - 1.0) > 1e-9:
            raise ValueError("three positive shares (train, validation, test) summing to 1")
        return v


class AucFloors(_Section):
    """The `promote.min_auc` section: the lowest out-of-time ROC AUC per model."""

    conversion: float = Field(0.70, ge=0.5, le=1.0)
    dropout: float = Field(0.60, ge=0.5, le=1.0)
    lead_quality: float = Field(0.58, ge=0.5, le=1.0)
    """Lower: judged before any activity, a lead's attributes alone predict less."""
    dropout_expected: float = Field(0.55, ge=0.5, le=1.0)
    """Lower: it may not know the rep, whose habits drive most dropouts."""


class HistoryConfig(_Section):
    """The `history` section: what each refresh keeps of every open lead's score, and the
    trend read from it."""

    reasons: int = Field(5, ge=0, le=20)
    """Top reasons kept per lead and refresh (with their points: "why it moved")."""
    trend_points: int = Field(3, ge=2)
    """Refreshes a trend looks back over (fewer recorded: "Not enough info")."""
    trend_min_points: float = Field(2.0, gt=0)
    """A move counts only when the score changed by at least this many percentage points..."""
    trend_min_relative: float = Field(0.10, ge=0)
    """...and by at least this share of the earlier score (a lead at 10% moving to 13% counts;
    one at 40% moving to 43% does not: 3 points are 7.5% of 40%)."""


class MonitorConfig(_Section):
    """The `monitor` section: drift, realised performance and freshness thresholds."""

    psi_warn: float = Field(0.1, gt=0)
    """Population stability index of a feature (or the score) above this: a warning."""
    psi_alarm: float = Field(0.25, gt=0)
    """... above this: an alarm (a feature of the served conversion model, or its scores)."""
    min_distinct_values: int = Field(30, ge=2)
    """A numeric input with fewer distinct values among the reference leads (a rate shared by
    every lead of a rep or a source) is reported but raises no drift alarm: its PSI measures
    how those few groups moved, not how the leads did."""
    max_ece: float = Field(0.05, gt=0)
    """Realised expected calibration error above this (and its noise band): an alarm."""
    min_auc_drop: float = Field(0.05, gt=0)
    """Realised ROC AUC below the model's replay AUC by more than this (and the upper end of
    its 90% interval below the replay AUC): an alarm."""
    min_positives: int = Field(30, ge=1)
    """Realised performance is judged only with at least this many conversions."""
    max_hours_since_activity: float = Field(48.0, gt=0)
    """No activity newer than this many hours (before now): a freshness alarm."""
    max_outside_range: float = Field(0.2, ge=0, le=1)
    """Share of open leads outside the training range (lead age, days since the last touch)
    above this: an alarm."""


class SparkConfig(_Section):
    """The `spark` section: where `--engine spark` runs (SPARK_REMOTE, when set, wins: Spark
    Connect)."""

    master: str = "local[*]"
    """`local[*]` (every core of this machine), `local[2]`, `spark://host:7077`, `yarn`, ..."""
    app_name: str = "leadlens"
    shuffle_partitions: int = Field(16, ge=1)
    """Partitions of the joins and windows (`spark.sql.shuffle.partitions`); about 2-4 per core
    of the cluster."""
    driver_memory: str = Field("4g", pattern=r"^\d+[kmgt]?$")
    """Memory of the driver (a local Spark runs everything in it), e.g. 4g."""
    train_sample_rows: int = Field(1_000_000, ge=1_000)
    """`leadlens train --engine spark`: the examples a model is fitted on at most, a stratified
    sample of whole leads when there are more (`training.spark_source`); the evaluation always
    reads every example. README "Scaling out" says why this many is enough."""


class RetrainConfig(_Section):
    """The `retrain` section: when `leadlens refresh` retrains (the promotion gates decide
    whether the new models are served)."""

    every_days: int = Field(14, ge=1)
    """Retrain when the served conversion model's data ends this many days before the data."""
    on_alarm: bool = True
    """Retrain when a drift or performance alarm fires."""


class PromoteConfig(_Section):
    """The `promote` section: the gates a candidate must pass to become `@champion`."""

    min_auc: AucFloors = AucFloors()
    """Per model: a candidate with a lower out-of-time ROC AUC is never promoted."""
    max_ece: float = Field(0.05, gt=0, le=1.0)
    """... nor one with a larger expected calibration error."""
    auc_tolerance: float = Field(0.005, ge=0)
    """... nor one whose AUC is below the champion's by more than this."""
    min_positives_ece: int = Field(30, ge=1)
    """Calibration is judged only on a test with at least this many positives (fewer make the
    ECE noise, not evidence); below it the gate notes why it did not judge."""


class RepsConfig(_Section):
    """The `reps` section: how the rep report judges reps and what it lists."""

    q: float = Field(0.10, gt=0, lt=1)
    """False discovery rate across the reps compared, per kind of flag."""
    interval: float = Field(0.90, gt=0, lt=1)
    """Coverage of the intervals shown for observed/expected ratios."""
    conversion_margin: float = Field(0.75, gt=0, le=1)
    """A conversion flag needs O/E credibly below this fraction of the typical rep's O/E."""
    dropout_margin: float = Field(1.25, ge=1)
    """A dropout flag needs dropouts/expected credibly above this multiple of the typical
    rep's."""
    min_expected_conversions: float = Field(3.0, gt=0)
    """Below this many expected conversions a rep's conversions are not judged."""
    min_expected_dropouts: float = Field(5.0, gt=0)
    """Below this many expected dropouts a rep's follow-up discipline is not judged."""
    min_new_leads_touched: int = Field(20, ge=1)
    """New leads first touched needed before follow-up depth is compared with peers."""
    depth_far_below: float = Field(0.5, gt=0, le=1)
    """A depth flag also needs the rep's fifth-follow-up share below this fraction of the
    team's."""
    leads_at_risk: int = Field(5, ge=0)
    """Open leads with a high score and a high dropout risk listed per rep."""
    min_group_reps: int = Field(10, ge=2)
    """Reps are compared within their team (and role) when that group holds this many reps
    with enough data (the median of a few reps moves with each of them: teams of 8 lost two of
    twelve true flags on the simulator); else with their role across teams (from 3 reps), else
    with every rep; the report says which."""
    min_owned_share: float = Field(0.5, ge=0, le=1)
    """A rep whose outbound touches fall mostly on leads other reps own (a share on their own
    leads below this) is not judged as an owner: conversions, dropouts and depth are an
    owner's."""


class ServeConfig(_Section):
    """The `serve` section: grades, request limits, workers and model polling."""

    grade_cutoffs: tuple[float, float, float] = (0.30, 0.15, 0.05)
    """Lowest calibrated score for grades A, B and C; below the last is D."""
    max_batch: int = Field(1000, ge=1, le=MAX_BATCH_LIMIT)
    """Most leads in one /score or /dropout_risk request (at most 10,000); more is a 400."""
    max_body_bytes: int = Field(2_000_000, ge=1024)
    """Larger request bodies are refused with 413."""
    max_concurrency: int = Field(64, ge=1)
    """Requests being worked on per worker; beyond this a request is refused with 429 (and
    `Retry-After`) before its body is read."""
    max_expensive_per_key: int = Field(2, ge=1)
    """Expensive requests (the rep report, bodies over 64 KB) in flight per API key and
    worker; more get 429."""
    body_timeout_seconds: float = Field(10.0, gt=0)
    """A request body not fully received within this gets 408 (a slow sender holds no slot)."""
    request_timeout_seconds: float = Field(60.0, gt=0)
    """A request not answered within this gets 504."""
    drain_seconds: float = Field(5.0, ge=0)
    """On SIGTERM: how long a worker keeps answering (`/readyz` 503, new work 503) while
    requests in flight finish, before it stops."""
    access_log: bool = False
    """BentoML's per-request access log (measured to cost about a third of the throughput)."""
    workers: int = Field(2, ge=1, le=64)
    """Service worker processes (each loads the models; use about one per core)."""
    poll_seconds: float = Field(30.0, gt=0)
    """How often the service checks whether @champion moved."""
    engine: Literal["native", "compiled"] = "native"
    """What computes scores without reasons (the scored-leads table, `/score` with
    `explain: 0`): LightGBM itself, or its trees compiled to native code
    (`serving.compiled_trees`: about 2x faster, identical to 1e-9; needs a C compiler, else
    native with a log line). Reasons always come from LightGBM's TreeSHAP."""
    table_threads: int = Field(0, ge=0, le=256)
    """Threads for the TreeSHAP values of the open book when the scored-leads table is built
    (0: every core). The build runs at a lower CPU priority than requests, so requests keep
    their share while it runs."""

    @field_validator("grade_cutoffs")
    @classmethod
    def _descending(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if not (1 >= v[0] > v[1] > v[2] > 0):
            raise ValueError("three descending probabilities between 0 and 1 (A, B, C)")
        return v


class Settings(_Section):
    """The whole validated configuration, one attribute per section."""

    data: DataConfig = DataConfig()
    ingest: IngestConfig = IngestConfig()
    simulate: SimulateConfig = SimulateConfig()
    engagement: EngagementConfig = EngagementConfig()
    train: TrainConfig = TrainConfig()
    promote: PromoteConfig = PromoteConfig()
    reps: RepsConfig = RepsConfig()
    serve: ServeConfig = ServeConfig()
    history: HistoryConfig = HistoryConfig()
    monitor: MonitorConfig = MonitorConfig()
    retrain: RetrainConfig = RetrainConfig()
    spark: SparkConfig = SparkConfig()


@dataclass(frozen=True)
class Runtime:
    """Validated settings plus the locations taken from the environment."""

    settings: Settings
    home: Path
    config_path: Path | None
    tracking_uri: str | None = None
    derived: tuple[str, ...] = ()
    """Settings that follow the export ingested rather than the config (`core.export_profile`),
    one line each."""

    @property
    def warehouse_path(self) -> Path:
        """The DuckDB warehouse file readers open: the home's published snapshot
        (`core.warehouse_snapshots`; writers go through `new_snapshot`)."""
        from core.warehouse_snapshots import current_warehouse

        return current_warehouse(self.home)

    @property
    def quarantine_dir(self) -> Path:
        """Where ingestion writes the rows it quarantines."""
        return self.home / "quarantine"

    @property
    def mlflow_uri(self) -> str:
        """`MLFLOW_TRACKING_URI` when set (a shared server), else a SQLite store in the home."""
        return self.tracking_uri or f"sqlite:///{self.home / 'mlflow.db'}"

    @property
    def mlflow_artifacts(self) -> Path:
        """The local MLflow artifact store in the home."""
        return self.home / "mlartifacts"


def format_config_errors(path: Path | None, err: ValidationError,
                         what: str = "configuration") -> str:
    """A pydantic validation error as lines naming the file and each bad key."""
    where = str(path) if path else "built-in defaults"
    lines = [f"{where}: invalid {what}"]
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        if e["type"] == "extra_forbidden":
            lines.append(f"  key '{key}': unknown key")
        else:
            lines.append(f"  key '{key}': {e['msg']}")
    return "\n".join(lines)


def parse_settings(data: dict[str, Any] | None, path: Path | None = None) -> Settings:
    """Validate a mapping (as read from YAML) into `Settings`; errors name the key."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of sections")
    try:
        # YAML lists arrive as lists; the models hold tuples.
        return Settings.model_validate(_lists_to_tuples(data), strict=True)
    except ValidationError as err:
        raise ConfigError(format_config_errors(path, err)) from None


def _lists_to_tuples(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _lists_to_tuples(v) for k, v in value.items()}
    if isinstance(value, list):
        return tuple(_lists_to_tuples(v) for v in value)
    return value


def load_settings(path: Path | None = None) -> Settings:
    """Read and validate a YAML config file; with no path, the built-in defaults."""
    if path is None:
        return Settings()
    return parse_settings(read_yaml(path, "config file"), Path(path))


def read_yaml(path: Path | str, what: str) -> Any:
    """A YAML file's content; unreadable or invalid files raise `ConfigError` naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read the {what} ({err.strerror})") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({err})") from None


def load_runtime(config: Path | None = None, env: dict[str, str] | None = None) -> Runtime:
    """Settings from `config` (or `LEADLENS_CONFIG`), home from `LEADLENS_HOME`; training
    settings the config leaves unset follow a flat export's profile (`core.export_profile`)."""
    env = dict(os.environ) if env is None else env
    if config is None and env.get(CONFIG_ENV):
        config = Path(env[CONFIG_ENV])
    from core.export_profile import apply_profile, read_profile

    home = Path(env.get(HOME_ENV) or DEFAULT_HOME).expanduser().resolve()
    # training settings the config leaves unset follow the export ingested (a flat export)
    settings, derived = apply_profile(load_settings(config), read_profile(home))
    return Runtime(settings=settings, home=home, config_path=config,
                   tracking_uri=env.get(TRACKING_ENV) or None, derived=derived)
