"""One monitoring run: is the served conversion model still looking at the world it learned?

Compared with the leads open at the end of the model's training data (`until`, the book it was
built for), the leads open now:
- **feature drift**: PSI of each model input (`monitoring.drift`); a numeric input with few
  distinct values (`monitor.min_distinct_values`: a rate per rep or per source) is reported,
  not alarmed on;
- **score drift**: PSI of the model's scores on the two books;
- **realised performance**: the leads open at `as_of - horizon` (a day after `until`, so none
  of their outcomes was seen in training), scored as of that day, judged on whether they
  converted within the horizon: ROC AUC and ECE (with its noise band) against the thresholds;
  before a whole horizon has passed since `until` it says so instead;
- **freshness**: hours from the newest activity to `now`;
- **coverage**: the share of open leads outside the training range.

Each check gives a figure, and an alarm when its threshold (`monitor.*`) is crossed. Reports are
kept as JSON under `monitoring/` in the home (one per `as_of`; a rerun replaces it) and exposed
as Prometheus gauges, in `GET /model` and on the dashboard.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from core.model_bundle import ModelBundle
from core.settings import Settings
from core.warehouse import attribute_types, single_row
from features.engagement import batch_features, select_pairs
from monitoring.drift import psi_frame, psi_numeric, realised

DIRECTORY = "monitoring"
MAX_BOOK = 100_000
"""Books larger than this are sampled (seeded) for the drift figures."""


def _book(con: duckdb.DuckDBPyConnection, at: pd.Timestamp, settings: Settings) -> pd.DataFrame:
    pairs = select_pairs(con, at, "open")
    if len(pairs) > MAX_BOOK:
        pairs = pairs.sample(MAX_BOOK, random_state=0).sort_values("lead_id")
    if pairs.empty:
        return pairs
    return batch_features(con, pairs, settings.engagement, list(attribute_types(con)))


def _realised(con: duckdb.DuckDBPyConnection, bundle: ModelBundle, settings: Settings,
              until: pd.Timestamp, as_of: pd.Timestamp) -> dict[str, Any]:
    horizon = pd.Timedelta(days=settings.train.horizon_days)
    origin = as_of - horizon
    if origin <= until:
        return {"origin": None, "note": f"not yet: a whole horizon ({horizon.days} days) after "
                f"the model's data ({until:%Y-%m-%d}) has not passed"}
    book = _book(con, origin, settings)
    if book.empty:
        return {"origin": str(origin), "note": "no lead was open then"}
    won = con.execute(
        "SELECT lead_id FROM leads WHERE converted_at >= $o AND converted_at < $e "
        "AND lead_id IN (SELECT unnest($ids))",
        {"o": origin.to_pydatetime(), "e": as_of.to_pydatetime(),
         "ids": book["lead_id"].tolist()}).df()["lead_id"]
    y = book["lead_id"].isin(set(won)).to_numpy(dtype=float)
    return {"origin": str(origin), **realised(y, bundle.predict(book))}


def _alarms(report: dict[str, Any], bundle: ModelBundle, settings: Settings) -> list[dict]:
    cfg = settings.monitor
    out = []
    drifted = {f: v for f, v in report["feature_psi"].items()
               if v > cfg.psi_alarm and f not in report["few_values"]}
    if drifted:
        out.append({"check": "feature_drift", "detail": "PSI above "
                    f"{cfg.psi_alarm}: " + ", ".join(f"{f} {v:.2f}" for f, v in sorted(
                        drifted.items(), key=lambda kv: -kv[1]))})
    if report["score_psi"] is not None and report["score_psi"] > cfg.psi_alarm:
        out.append({"check": "score_drift",
                    "detail": f"score PSI {report['score_psi']:.2f} above {cfg.psi_alarm}"})
    r = report["realised"]
    if r.get("positives", 0) >= cfg.min_positives:
        replay_auc = bundle.meta.get("test_metrics", {}).get("roc_auc")
        if r["auc"] is not None and replay_auc is not None and (
                r["auc"] < replay_auc - cfg.min_auc_drop and r["auc_high"] < replay_auc):
            out.append({"check": "realised_auc", "detail": f"AUC {r['auc']:.3f} (90% interval "
                        f"up to {r['auc_high']:.3f}) on leads resolved since training, "
                        f"{replay_auc:.3f} at training"})
        if r["ece_low"] is not None and r["ece_low"] > cfg.max_ece:
            out.append({"check": "realised_ece", "detail": f"ECE {r['ece']:.3f} (90% interval "
                        f"from {r['ece_low']:.3f}) above {cfg.max_ece}"})
    hours = report["hours_since_activity"]
    if hours is not None and hours > cfg.max_hours_since_activity:
        out.append({"check": "freshness", "detail": f"no activity for {hours:,.0f} hours "
                    f"(more than {cfg.max_hours_since_activity:g})"})
    outside = [f"{k} {v:.0%}" for k, v in report["outside_training_range"].items()
               if v > cfg.max_outside_range]
    if outside:
        out.append({"check": "coverage", "detail": "open leads outside the training range: "
                    + ", ".join(outside)})
    return out


def monitor(con: duckdb.DuckDBPyConnection, bundle: ModelBundle, settings: Settings,
            as_of: pd.Timestamp, now: pd.Timestamp) -> dict[str, Any]:
    """One monitoring report for the conversion model `bundle` on the warehouse at `as_of`."""
    if not bundle.meta.get("until"):
        raise ValueError(f"model v{bundle.meta.get('version', '?')} does not record where its "
                         "data ends (trained by an older LeadLens): retrain it to monitor it")
    until = pd.Timestamp(bundle.meta["until"])
    reference, current = _book(con, until, settings), _book(con, as_of, settings)
    categorical = [f for f in bundle.features if f in bundle.categories]
    numeric = [f for f in bundle.features if f not in bundle.categories]
    latest = single_row(con.execute("SELECT max(occurred_at) FROM activities"))[0]
    scores = bundle.predict(current) if len(current) else np.empty(0)  # scored once
    report: dict[str, Any] = {
        "as_of": str(as_of), "now": str(now), "model_version": bundle.meta.get("version"),
        "model_until": str(until), "open_leads": len(current), "reference_leads": len(reference),
        "feature_psi": (psi_frame(reference, current, numeric, categorical)
                        if len(reference) and len(current) else {}),
        "few_values": [f for f in numeric if f in reference and pd.to_numeric(
            reference[f], errors="coerce").nunique() < settings.monitor.min_distinct_values],
        "score_psi": (round(psi_numeric(bundle.predict(reference), scores), 5)
                      if len(reference) and len(current) else None),
        "score_mean": float(np.mean(scores)) if len(current) else None,
        "realised": _realised(con, bundle, settings, until, as_of),
        "hours_since_activity": (round((now - pd.Timestamp(latest)).total_seconds() / 3600, 2)
                                 if latest is not None else None),
        "outside_training_range": ({k: round(v, 4) for k, v in bundle.coverage(current).items()}
                                   if len(current) else {}),
    }
    report["alarms"] = _alarms(report, bundle, settings)
    cfg = settings.monitor
    report["warnings"] = [f"{f}: PSI {v:.2f} (moderate shift)"
                          for f, v in sorted(report["feature_psi"].items(), key=lambda kv: -kv[1])
                          if cfg.psi_warn < v <= cfg.psi_alarm and f not in report["few_values"]]
    return report


def save_report(home: Path, report: dict[str, Any]) -> Path:
    """Keep a report (one per as_of: a rerun replaces it), written whole."""
    directory = Path(home) / DIRECTORY
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"monitor-{pd.Timestamp(report['as_of']):%Y%m%dT%H%M%S}.json"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return path


def reports(home: Path) -> list[dict[str, Any]]:
    """Every kept report, oldest first (unreadable files skipped)."""
    out = []
    for path in sorted((Path(home) / DIRECTORY).glob("monitor-*.json")):
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return out


def latest_report(home: Path) -> dict[str, Any] | None:
    """The newest kept report, or None."""
    paths = sorted((Path(home) / DIRECTORY).glob("monitor-*.json"))
    for path in reversed(paths):
        try:
            return dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return None


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")


def prometheus_text(report: dict[str, Any] | None) -> str:
    """The latest report as Prometheus gauges (text exposition format)."""
    if report is None:
        return ""
    checks = ("feature_drift", "score_drift", "realised_auc", "realised_ece", "freshness",
              "coverage")
    fired = {a["check"] for a in report.get("alarms", [])}
    lines = ["# HELP leadlens_monitor_alarm 1 when the check's alarm fired in the latest "
             "monitoring run", "# TYPE leadlens_monitor_alarm gauge"]
    lines += [f'leadlens_monitor_alarm{{check="{c}"}} {int(c in fired)}' for c in checks]
    lines += ["# HELP leadlens_feature_psi Population stability index of each model input, "
              "open book now against the book at the model's training end",
              "# TYPE leadlens_feature_psi gauge"]
    lines += [f'leadlens_feature_psi{{feature="{_label(f)}"}} {v}'
              for f, v in report.get("feature_psi", {}).items()]
    realised_ = report.get("realised", {})
    for name, value, what in (
            ("leadlens_score_psi", report.get("score_psi"), "PSI of the conversion scores"),
            ("leadlens_realised_auc", realised_.get("auc"),
             "ROC AUC on leads resolved since the model was trained"),
            ("leadlens_realised_ece", realised_.get("ece"),
             "Expected calibration error on leads resolved since the model was trained"),
            ("leadlens_hours_since_activity", report.get("hours_since_activity"),
             "Hours from the newest activity to the monitoring run"),
            ("leadlens_open_leads", report.get("open_leads"), "Leads open at the as_of")):
        if value is not None:
            lines += [f"# HELP {name} {what}", f"# TYPE {name} gauge", f"{name} {value}"]
    lines += ["# HELP leadlens_outside_training_range Share of open leads outside the "
              "training range", "# TYPE leadlens_outside_training_range gauge"]
    lines += [f'leadlens_outside_training_range{{input="{_label(k)}"}} {v}'
              for k, v in report.get("outside_training_range", {}).items()]
    return "\n".join(lines) + "\n"
