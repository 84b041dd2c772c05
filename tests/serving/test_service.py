"""The BentoML app in-process: answers, auth, limits, malformed requests, hot swap, and the same
score from the service, the CLI and the training pipeline."""

from __future__ import annotations

import json
import logging

import numpy as np
import pandas as pd
import pytest

from core.registry import load_version
from core.warehouse import Warehouse
from features.engagement import batch_features

SECRET = "zq-SECRET-7731"  # planted in bad requests: must never come back


def _serving_the_champion(client, auth, seconds: float = 120) -> None:
    """Wait until the in-process service has picked up the current @champion (an earlier test
    may have moved it; the service swaps at its next poll)."""
    import time

    from core.registry import champion_version

    deadline = time.time() + seconds
    while True:
        served = client.get("/model", headers=auth).json()["models"]["conversion"]["version"]
        if served == champion_version("leadlens-conversion"):
            return
        assert time.time() < deadline, "the service never picked up @champion"
        time.sleep(0.5)


def _open_lead(runtime, as_of) -> str:
    from features.engagement import select_pairs

    with Warehouse(runtime.warehouse_path, read_only=True) as wh:
        return select_pairs(wh.con, as_of, "open")["lead_id"].iloc[7]


def test_probes_are_open_and_everything_else_needs_a_key(client, auth):
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200
    body = {"leads": [{"lead_id": "L000001"}]}
    assert client.post("/score", json=body).status_code == 401
    assert client.post("/score", json=body,
                       headers={"Authorization": "Bearer wrong-key-wrong-key-0"}).status_code == 401
    assert client.post("/score", json=body,
                       headers={"Authorization": auth["Authorization"].replace("Bearer", "Basic")}
                       ).status_code == 401
    assert client.get("/model").status_code == 401
    assert client.get("/model", headers=auth).status_code == 200


def test_score_explain_and_dropout(client, auth, served_home):
    import os

    runtime, _, _ = served_home
    info = client.get("/model", headers=auth).json()
    assert info["worker"] == os.getpid()  # in process: this test's process answers
    as_of = pd.Timestamp(info["as_of"])
    lead = _open_lead(runtime, as_of)
    r = client.post("/score", json={"leads": [{"lead_id": lead}], "explain": 5}, headers=auth)
    assert r.status_code == 200, r.text
    row = r.json()["results"][0]
    assert 0 <= row["score"] <= 1 and row["grade"] in "ABCD" and row["lead_id"] == lead
    assert len(row["reasons"]) == 5 and row["model_version"] == info["models"]["conversion"]["version"]
    assert all({"feature", "label", "value", "points", "direction", "text"} <= set(x) <=
               {"feature", "features", "label", "value", "points", "direction", "text"}
               for x in row["reasons"])

    full = client.post("/explain", json={"lead": {"lead_id": lead}}, headers=auth).json()
    points = sum(c["points"] for c in full["contributions"])
    assert points / 100 == pytest.approx(full["score"] - full["base_score"], abs=1e-4)
    assert full["score"] == pytest.approx(row["score"], abs=1e-6)
    # each reason's points are the sum of its features' contributions (the windows of one
    # count are one reason), and the reasons are the five largest such sums
    from core.reason_text import family_of

    by_feature = {c["feature"]: c["points"] for c in full["contributions"]}
    assert [r["points"] for r in row["reasons"]] == pytest.approx(
        [sum(by_feature[f] for f in r.get("features", [r["feature"]])) for r in row["reasons"]],
        abs=1e-6)
    families: dict[str, float] = {}
    for c in full["contributions"]:
        families[family_of(c["feature"])] = families.get(family_of(c["feature"]), 0.0) + c["points"]
    largest = sorted((abs(v) for v in families.values()), reverse=True)[:5]
    assert sorted((abs(r["points"]) for r in row["reasons"]), reverse=True) == pytest.approx(
        largest, abs=1e-3)

    d = client.post("/dropout_risk", json={"leads": [{"lead_id": lead}]}, headers=auth).json()
    assert 0 <= d["results"][0]["dropout_risk"] <= 1 and len(d["results"][0]["reasons"]) == 3


def test_described_lead_matches_the_same_lead_by_id(client, auth, served_home):
    runtime, _, crm = served_home
    info = client.get("/model", headers=auth).json()
    as_of = pd.Timestamp(info["as_of"])
    lead_id = _open_lead(runtime, as_of)
    lead = crm.leads.set_index("lead_id").loc[lead_id]
    acts = crm.activities[crm.activities.lead_id == lead_id]
    body = {"leads": [{
        "lead_id": lead_id, "created_at": lead.created_at.isoformat(),
        "owner_rep_id": lead.owner_rep_id, "source": lead.source,
        "attributes": {"industry": lead.industry, "company_size": float(lead.company_size),
                       "country": lead.country},
        "activities": [{"activity_id": a.activity_id, "occurred_at": a.occurred_at.isoformat(),
                        "type": a.type, "direction": a.direction, "outcome": a.outcome,
                        "amount": None if pd.isna(a.amount) else float(a.amount)}
                       for a in acts.itertuples()],
    }, {"lead_id": "L000002"}, {"lead_id": lead_id}]}
    r = client.post("/score", json=body, headers=auth)
    assert r.status_code == 200, r.text
    described, other, by_id = r.json()["results"]  # answers come back in request order
    assert described["score"] == pytest.approx(by_id["score"], abs=1e-9)
    alone = client.post("/score", json={"leads": [{"lead_id": "L000002"}]}, headers=auth)
    assert other["score"] == alone.json()["results"][0]["score"]
    assert [x["lead_id"] for x in r.json()["results"]] == [lead_id, "L000002", lead_id]


def test_no_train_serve_skew(client, auth, served_home, tmp_path):
    """The same lead scored by HTTP, by `leadlens score` and by the training pipeline's model
    on batch features: one score."""
    from click.testing import CliRunner

    from leadlens.cli import main

    runtime, _, _ = served_home
    _serving_the_champion(client, auth)  # the CLI scores with @champion: compare like with like
    as_of = pd.Timestamp(client.get("/model", headers=auth).json()["as_of"])
    lead = _open_lead(runtime, as_of)
    http = client.post("/score", json={"leads": [{"lead_id": lead}]}, headers=auth).json()
    out = tmp_path / "scored.csv"
    res = CliRunner().invoke(main, ["score", "--open", "--as-of", str(as_of), "--out", str(out)],
                             catch_exceptions=False)
    assert res.exit_code == 0, res.output
    cli = pd.read_csv(out).set_index("lead_id").loc[lead, "score"]
    version = http["results"][0]["model_version"]
    bundle = load_version("leadlens-conversion", version)
    with Warehouse(runtime.warehouse_path, read_only=True) as wh:
        feats = batch_features(wh.con, pd.DataFrame({"lead_id": [lead], "as_of": [as_of]}),
                               runtime.settings.engagement, list(wh.attribute_types()))
    trained = float(bundle.predict(feats)[0])
    assert http["results"][0]["score"] == pytest.approx(trained, abs=1e-6)
    assert cli == pytest.approx(trained, abs=1e-6)


MALFORMED = [
    ("not json", b"{leads: " + SECRET.encode()),
    ("empty body", b""),
    ("json array", json.dumps([SECRET]).encode()),
    ("json string", json.dumps(SECRET).encode()),
    ("no leads", json.dumps({"explain": 1}).encode()),
    ("empty leads", json.dumps({"leads": []}).encode()),
    ("leads not a list", json.dumps({"leads": SECRET}).encode()),
    ("lead not an object", json.dumps({"leads": [SECRET]}).encode()),
    ("unknown top-level field", json.dumps({"leads": [{"lead_id": "L1"}], SECRET: 1}).encode()),
    ("unknown lead field", json.dumps({"leads": [{"lead_id": "L1", "email": SECRET}]}).encode()),
    ("lead_id too long", json.dumps({"leads": [{"lead_id": SECRET * 20}]}).encode()),
    ("lead_id a number", json.dumps({"leads": [{"lead_id": 12345}]}).encode()),
    ("empty lead", json.dumps({"leads": [{}]}).encode()),
    ("fields without created_at", json.dumps({"leads": [{"source": SECRET}]}).encode()),
    ("bad created_at", json.dumps({"leads": [{"created_at": SECRET}]}).encode()),
    ("bad activity type", json.dumps({"leads": [{"created_at": "2025-01-01T00:00:00",
                                                 "activities": [{"occurred_at": "2025-01-02",
                                                                 "type": SECRET}]}]}).encode()),
    ("bad direction", json.dumps({"leads": [{"created_at": "2025-01-01T00:00:00",
                                             "activities": [{"occurred_at": "2025-01-02",
                                                             "type": "call",
                                                             "direction": SECRET}]}]}).encode()),
    ("negative amount", json.dumps({"leads": [{"created_at": "2025-01-01T00:00:00",
                                               "activities": [{"occurred_at": "2025-01-02",
                                                               "type": "proposal",
                                                               "amount": -5}]}]}).encode()),
    ("activity without time", json.dumps({"leads": [{"created_at": "2025-01-01T00:00:00",
                                                     "activities": [{"type": "call"}]}]}).encode()),
    ("attribute a list", json.dumps({"leads": [{"created_at": "2025-01-01T00:00:00",
                                                "attributes": {"industry": [SECRET]}}]}).encode()),
    ("explain too high", json.dumps({"leads": [{"lead_id": "L1"}], "explain": 999}).encode()),
    ("explain negative", json.dumps({"leads": [{"lead_id": "L1"}], "explain": -1}).encode()),
    ("bad as_of", json.dumps({"leads": [{"lead_id": "L1"}], "as_of": SECRET}).encode()),
    ("NaN amount", b'{"leads": [{"created_at": "2025-01-01T00:00:00", "activities": '
                   b'[{"occurred_at": "2025-01-02", "type": "proposal", "amount": NaN}]}]}'),
]


@pytest.mark.parametrize("name,body", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_requests_get_4xx_without_echo(client, auth, name, body, caplog):
    caplog.set_level("DEBUG")
    r = client.post("/score", content=body,
                    headers={**auth, "content-type": "application/json"})
    assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
    assert SECRET not in r.text
    logged = "\n".join(logging.Formatter().format(rec) for rec in caplog.records)
    assert SECRET not in logged


def test_batch_limit_names_the_limit(client, auth):
    body = {"leads": [{"lead_id": f"L{i}"} for i in range(1001)]}
    r = client.post("/score", json=body, headers=auth)
    assert r.status_code == 400 and "at most 1000 (serve.max_batch)" in r.text


def test_batch_limit_is_the_configured_one(client, auth, service_module, monkeypatch):
    """`serve.max_batch` is the limit in force (the schema only holds its ceiling)."""
    from core.settings import ServeConfig, Settings

    state = service_module._LIVE["state"]
    small = type(state.runtime)(Settings(serve=ServeConfig(max_batch=3)), state.runtime.home,
                                None)
    monkeypatch.setattr(state, "runtime", small)
    ids = [{"lead_id": "L000002"}] * 4
    for path in ("/score", "/dropout_risk"):
        r = client.post(path, json={"leads": ids}, headers=auth)
        assert r.status_code == 400 and "at most 3 (serve.max_batch)" in r.text, path
    assert client.post("/score", json={"leads": ids[:3]}, headers=auth).status_code == 200


def test_unknown_lead_is_404_naming_its_position(client, auth):
    r = client.post("/score", json={"leads": [{"lead_id": "L000001"}, {"lead_id": SECRET}]},
                    headers=auth)
    assert r.status_code == 404 and "leads[1]" in r.text and SECRET not in r.text
    # one error shape everywhere: an object with the message, as for 400, 401, 413 and 415
    body = r.json()
    assert isinstance(body, dict) and body["error"].startswith("leads[1]: lead_id is not")


def test_body_size_limit(client, auth, service_module):
    limit = service_module._LIVE["state"].runtime.settings.serve.max_body_bytes
    big = b'{"leads": [' + b'{"lead_id": "L1"},' * (limit // 15) + b'{"lead_id": "L1"}]}'
    r = client.post("/score", content=big, headers={**auth, "content-type": "application/json"})
    assert r.status_code == 413

    def chunks():  # no content-length: the guard counts what arrives
        for _ in range(limit // 1000 + 2):
            yield b" " * 1000

    r = client.post("/score", content=chunks(), headers={**auth,
                                                          "content-type": "application/json"})
    assert r.status_code == 413


def test_reps_report(client, auth, monkeypatch):
    import reps.report

    built = []
    real = reps.report.build_report
    monkeypatch.setattr(reps.report, "build_report",
                        lambda *a, **k: built.append(1) or real(*a, **k))
    r = client.post("/reps", json={"from": "2025-04-01", "to": "2025-09-30"}, headers=auth)
    assert r.status_code == 200, r.text
    data = r.json()
    # the same report again comes from the worker's cache: built once (seconds of CPU each)
    once = len(built)
    again = client.post("/reps", json={"from": "2025-04-01", "to": "2025-09-30"}, headers=auth)
    assert again.json() == data and len(built) == once
    other = {"from": "2025-05-07", "to": "2025-08-19"}  # asked by no other test
    client.post("/reps", json=other, headers=auth)
    client.post("/reps", json=other, headers=auth)
    assert len(built) == once + 1
    assert "employment decisions" in data["note"] and len(data["reps"]) == 16
    assert {"rep_id", "oe_ratio", "oe_interval", "status", "flags"} <= set(data["reps"][0])
    at_risk = [lead for rep in data["reps"] for lead in rep["leads_at_risk"]]
    assert at_risk and all(lead["reason"].startswith("Likely to convert (") for lead in at_risk)
    bad = client.post("/reps", json={"period": SECRET}, headers=auth)
    assert bad.status_code == 400 and SECRET not in bad.text


def test_hot_swap_and_refusal(client, auth, served_home, service_module, monkeypatch, caplog):
    from mlflow import MlflowClient

    from core.registry import configure
    from core.settings import LightGBMConfig, Settings, TrainConfig
    from training.pipeline import train_models

    runtime, _, _ = served_home
    state = service_module._LIVE["state"]
    before = client.get("/model", headers=auth).json()["models"]["conversion"]["version"]
    other = type(runtime)(Settings(train=TrainConfig(lightgbm=LightGBMConfig(num_leaves=7))),
                          runtime.home, None)
    new = train_models(other, kinds=("conversion",), say=lambda _m: None)
    version = new.results["conversion"].version
    configure(runtime.mlflow_uri)
    MlflowClient().set_registered_model_alias("leadlens-conversion", "champion", str(version))

    # a version that fails to load is refused; the old one keeps serving
    import serving.state as state_module

    real = state_module.load_version
    monkeypatch.setattr(state_module, "load_version",
                        lambda *a, **k: (_ for _ in ()).throw(ValueError("corrupt bundle")))
    caplog.set_level("WARNING", logger="leadlens.serving")
    events = state.poll_once()
    assert any("refused" in e for e in events)
    assert client.get("/model", headers=auth).json()["models"]["conversion"]["version"] == before
    monkeypatch.setattr(state_module, "load_version", real)

    events = state.poll_once()
    assert any(f"now serving v{version}" in e for e in events), events
    # both events reach the log at WARNING, and the swapped-in version is the store's newest
    # copy (the fallback serves the latest champion seen, not the one loaded at start)
    assert "model poll: leadlens-conversion: refused" in caplog.text
    assert f"model poll: leadlens-conversion: now serving v{version}" in caplog.text
    assert state_module._last_served(runtime.home, "leadlens-conversion") == version
    assert state_module._from_store("leadlens-conversion", version)[1] == version
    r = client.post("/score", json={"leads": [{"lead_id": "L000002"}]}, headers=auth).json()
    assert r["results"][0]["model_version"] == version
    MlflowClient().set_registered_model_alias("leadlens-conversion", "champion", str(before))
    state.poll_once()
    assert np.isfinite(r["results"][0]["score"])
    # back to the first: the fallback's choice follows, though that copy is the older one
    assert state_module._last_served(runtime.home, "leadlens-conversion") == before
    assert state_module._from_store("leadlens-conversion",
                                    state_module._last_served(runtime.home,
                                                              "leadlens-conversion"))[1] == before


def test_model_info_reports_coverage_of_the_open_book(client, auth, service_module):
    """`GET /model` says what share of the open leads lies outside the conversion model's
    training range (lead age, days since the last touch), once the scored-leads table is
    built; the figures are those of the table's own leads."""
    import time

    state = service_module._LIVE["state"]
    served, table = state.scored_leads()
    deadline = time.time() + 60
    info = client.get("/model", headers=auth).json()
    while "coverage" not in info:
        assert time.time() < deadline
        time.sleep(0.2)
        info = client.get("/model", headers=auth).json()
    cov = info["coverage"]
    assert cov["open_leads"] == len(table.frame)
    bundle = served.scorers["conversion"].bundle
    assert set(cov["outside_training_range"]) == set(bundle.meta["training_range"]) == {
        "lead_age_days", "days_since_last_touch"}
    feats = served.source.for_ids(table.frame["lead_id"].tolist(), served.as_of)
    low, high = bundle.meta["training_range"]["lead_age_days"]
    expected = float(((feats["lead_age_days"] < low) | (feats["lead_age_days"] > high)).mean())
    assert cov["outside_training_range"]["lead_age_days"] == pytest.approx(expected, abs=1e-4)
    assert (cov["warning"] is None) == all(v <= 0.2 for v in
                                           cov["outside_training_range"].values())


def _described(**fields):
    return {"leads": [{"created_at": "2025-01-01T00:00:00", **fields}]}


@pytest.mark.parametrize("name,body,says", [
    ("as_of digits", {"leads": [{"lead_id": "L1"}], "as_of": "20260101"}, "ISO-8601"),
    ("as_of a number", {"leads": [{"lead_id": "L1"}], "as_of": 1767225600}, "Unix time"),
    ("as_of in 1900", {"leads": [{"lead_id": "L1"}], "as_of": "1900-01-01T00:00:00"},
     "before 1990-01-01"),
    ("created_at 9999", {"leads": [{"created_at": "9999-01-01T00:00:00"}]}, "in the future"),
    ("activity in 1900", _described(activities=[{"occurred_at": "1900-01-02", "type": "call"}]),
     "before 1990-01-01"),
    ("huge integer", _described(attributes={"employees": int("9" * 400)}), "'employees'"),
])
def test_implausible_moments_and_numbers_are_400_naming_the_field(client, auth, name, body,
                                                                  says):
    r = client.post("/score", content=json.dumps(body).encode(),
                    headers={**auth, "content-type": "application/json"})
    assert r.status_code == 400, (name, r.status_code, r.text)
    assert says in r.text, (name, r.text)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_attributes_are_400(client, auth, literal):
    body = (b'{"leads": [{"created_at": "2025-01-01T00:00:00", "attributes": {"employees": '
            + literal.encode() + b"}}]}")
    r = client.post("/score", content=body, headers={**auth, "content-type": "application/json"})
    assert r.status_code == 400 and "'employees': not a finite number" in r.text, r.text


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml", "image/png",
                                   "multipart/form-data; boundary=x", None])
def test_only_json_bodies_are_read(client, auth, ctype):
    body = json.dumps({"leads": [{"lead_id": "L1"}]}).encode()
    headers = {**auth, **({"content-type": ctype} if ctype else {})}
    r = client.post("/score", content=body, headers=headers)
    assert r.status_code == 415 and "Content-Type: application/json" in r.text
    ok = client.post("/score", content=body,
                     headers={**auth, "content-type": "application/json; charset=utf-8"})
    assert ok.status_code != 415


def test_activities_with_and_without_ids_are_scored(client, auth):
    acts = [{"activity_id": "a1", "occurred_at": "2025-01-02", "type": "call"},
            {"occurred_at": "2025-01-02", "type": "email"},
            {"activity_id": None, "occurred_at": "2025-01-03", "type": "call"}]
    r = client.post("/score", json=_described(activities=acts), headers=auth)
    assert r.status_code == 200, r.text


def test_percentiles_are_measured_in_the_open_book(client, auth, service_module):
    """The percentile of a lead is its place among the open leads at the served as_of, from
    the first request on (it used to be measured among recent requests: 100 for a first
    request whatever the lead), for a lead by id and a lead described by its fields alike."""
    import numpy as np

    state = service_module._LIVE["state"]
    _served, table = state.scored_leads()
    book = np.sort(table.frame["score"].to_numpy())
    middle = table.frame.iloc[len(table.frame) // 2]
    row = client.post("/score", json={"leads": [{"lead_id": middle["lead_id"]}]},
                      headers=auth).json()["results"][0]
    expected = 100 * np.searchsorted(book, row["score"], side="right") / len(book)
    assert row["percentile"] == pytest.approx(expected, abs=0.05)
    assert 40 <= row["percentile"] <= 60
    top = client.post("/score", json={"leads": [{"lead_id": table.frame.iloc[0]["lead_id"]}]},
                      headers=auth).json()["results"][0]
    assert top["percentile"] == 100.0
    described = {"created_at": "2025-11-05T10:00:00", "owner_rep_id": "R001", "source": "web"}
    new = client.post("/score", json={"leads": [described]}, headers=auth).json()["results"][0]
    expected = 100 * np.searchsorted(book, new["score"], side="right") / len(book)
    assert new["percentile"] == pytest.approx(expected, abs=0.05)


def test_next_steps_for_an_open_lead_rescored_and_ranked(client, auth, service_module):
    state = service_module._LIVE["state"]
    _served, table = state.scored_leads()
    lead = table.frame.iloc[0]["lead_id"]
    r = client.post("/next_steps", json={"lead_id": lead}, headers=auth)
    assert r.status_code == 200, r.text
    plan = r.json()
    actions = [s["action"] for s in plan["steps"]]
    assert {"call", "email", "meeting"} <= set(actions) <= {"call", "email", "meeting",
                                                           "proposal"}
    points = [s["points"] for s in plan["steps"]]
    assert points == sorted(points, reverse=True)
    for s in plan["steps"]:
        assert s["points"] == pytest.approx((s["score_after"] - plan["score"]) * 100, abs=0.02)
    assert "not a promise" in plan["caveat"]
    # the dashboard's lead page shows the same steps
    page = client.get(f"/ui/api/lead?id={lead}", headers=auth).json()
    assert {(a["action"], a["points"]) for a in page["actions"]} == {
        (s["action"], s["points"]) for s in plan["steps"]}
    # a won or lost lead has no next step; an unknown one is 404
    import duckdb

    with duckdb.connect(str(state.runtime.warehouse_path), read_only=True) as con:
        won = con.execute("SELECT lead_id FROM leads WHERE converted_at IS NOT NULL "
                          "ORDER BY converted_at LIMIT 1").fetchall()[0][0]
    r = client.post("/next_steps", json={"lead_id": won}, headers=auth)
    assert r.status_code == 400 and "not open" in r.json()["error"]
    assert client.post("/next_steps", json={"lead_id": "NO-SUCH"}, headers=auth).status_code == 404
