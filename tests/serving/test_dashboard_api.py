"""The dashboard's page and JSON endpoints, in-process on the real BentoML app: the same
answers as the scoring endpoints, filters and pages that add up, and the same key rules."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from serving.dashboard import STATIC, UI_DIR


def test_page_and_assets_are_served_without_a_key_and_load_nothing_from_outside(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for path in STATIC:
        r = client.get(path)
        assert r.status_code == 200 and r.content == (UI_DIR / STATIC[path][0]).read_bytes()
    for name, _kind in STATIC.values():
        text = (UI_DIR / name).read_text()
        # every script, style and font comes from this service: no absolute URLs to elsewhere
        assert not re.search(r"(src|href)\s*=\s*['\"](https?:)?//", text), name
        assert "@import" not in text and "cdn" not in text.lower(), name


@pytest.mark.parametrize("path,key", [("/", False), ("/ui/app.js", False), ("/readyz", False),
                                      ("/ui/api/leads", True), ("/ui/api/leads", False),
                                      ("/model", True)])
def test_every_answer_carries_the_security_headers(client, auth, path, key):
    r = client.get(path, headers=auth if key else {})
    csp = r.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"


def test_the_dashboard_page_runs_no_inline_script_or_style():
    page = (UI_DIR / "index.html").read_text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page)  # every script is a file
    assert "<style" not in page and " style=" not in page and not re.search(r" on\w+=", page)


@pytest.mark.parametrize("path", ["/ui/api/leads", "/ui/api/lead?id=x", "/ui/api/reps",
                                  "/ui/api/model"])
def test_data_endpoints_need_the_key(client, path):
    r = client.get(path)
    assert r.status_code == 401
    r = client.get(path, headers={"Authorization": "Bearer wrong-key-wrong-key-wrong"})
    assert r.status_code == 401


def test_leads_are_ranked_scored_like_the_api_and_filtered_and_paged(client, auth):
    first = client.get("/ui/api/leads?per_page=50", headers=auth).json()
    rows = first["rows"]
    scores = [r["score"] for r in rows]
    assert scores == sorted(scores, reverse=True) and len(rows) == 50
    assert first["pages"] == -(-first["total"] // 50) and first["total"] > 500
    assert all(len(r["reasons"]) == 3 for r in rows)
    # the same scores as POST /score (the online path) and the same top reasons
    sample = [r["lead_id"] for r in rows[:10]]
    api = client.post("/score", headers=auth,
                      json={"leads": [{"lead_id": i} for i in sample], "explain": 3}).json()
    for row, res in zip(rows[:10], api["results"], strict=True):
        assert row["score"] == pytest.approx(res["score"], abs=1e-4)
        assert [x["feature"] for x in row["reasons"]] == [x["feature"] for x in res["reasons"]]
    risk = client.post("/dropout_risk", headers=auth,
                       json={"leads": [{"lead_id": sample[0]}], "explain": 0}).json()
    assert rows[0]["dropout_risk"] == pytest.approx(risk["results"][0]["dropout_risk"], abs=1e-4)

    rep = first["filters"]["reps"][0]
    by_rep = client.get(f"/ui/api/leads?rep={rep}&per_page=200", headers=auth).json()
    assert by_rep["total"] > 0 and {r["owner_rep_id"] for r in by_rep["rows"]} == {rep}
    grades = {g: client.get(f"/ui/api/leads?grade={g}&per_page=1", headers=auth).json()["total"]
              for g in "ABCD"}
    assert sum(grades.values()) == first["total"]
    last = client.get(f"/ui/api/leads?per_page=50&page={first['pages']}", headers=auth).json()
    assert len(last["rows"]) == first["total"] - 50 * (first["pages"] - 1)
    assert last["rows"][-1]["score"] <= rows[-1]["score"]


@pytest.mark.parametrize("query, name", [("per_page=500", "'per_page'"), ("page=0", "'page'"),
                                         ("page=abc", "'page'"), ("rep=" + "x" * 200, "'rep'"),
                                         ("zqsecret=" + "x" * 200, "does not use")])
def test_bad_queries_are_400_naming_the_parameter_not_its_value(client, auth, query, name):
    r = client.get(f"/ui/api/leads?{query}", headers=auth)
    assert r.status_code == 400 and name in r.text
    assert "abc" not in r.text and "x" * 20 not in r.text and "zqsecret" not in r.text


def test_lead_page_matches_explain_and_its_what_if_is_the_model_s(client, auth, served_home):
    _runtime, _report, crm = served_home
    lead_id = client.get("/ui/api/leads?per_page=1&page=3", headers=auth).json()["rows"][0][
        "lead_id"]
    view = client.get(f"/ui/api/lead?id={lead_id}", headers=auth).json()
    full = client.post("/explain", json={"lead": {"lead_id": lead_id}}, headers=auth).json()
    assert view["score"] == pytest.approx(full["score"], abs=1e-6)
    assert view["base_score"] == pytest.approx(full["base_score"], abs=1e-6)
    total = sum(c["points"] for c in view["contributions"]) / 100
    assert total == pytest.approx(view["score"] - view["base_score"], abs=1e-3)
    by_feature = {c["feature"]: c["points"] for c in full["contributions"]}
    for r in view["reasons"]:  # a reason's points: the sum of its features'
        assert r["points"] == pytest.approx(
            sum(by_feature[f] for f in r.get("features", [r["feature"]])), abs=1e-3)
    assert view["waterfall_svg"].startswith("<svg") and "</svg>" in view["waterfall_svg"]

    # the timeline is the lead's activities before as_of, oldest first
    acts = crm.activities[crm.activities["lead_id"] == lead_id].copy()
    acts["occurred_at"] = pd.to_datetime(acts["occurred_at"], utc=True).dt.tz_localize(None)
    as_of = pd.Timestamp(view["as_of"])
    assert len(view["timeline"]) == int((acts["occurred_at"] < as_of).sum())

    # each next step: the model's score with that activity added, through the public API
    lead = crm.leads[crm.leads["lead_id"] == lead_id].iloc[0]
    base_acts = [{"activity_id": str(a.activity_id), "occurred_at": str(a.occurred_at),
                  "type": a.type, "direction": a.direction,
                  "outcome": None if pd.isna(a.outcome) else a.outcome,
                  "amount": None if pd.isna(a.amount) else float(a.amount)}
                 for a in acts[acts["occurred_at"] < as_of].itertuples()]
    call = view["actions"][0]
    assert call["action"] == "call"
    step_at = (as_of + pd.Timedelta(minutes=1)).isoformat()
    described = {"lead_id": lead_id, "created_at": str(lead["created_at"]),
                 "owner_rep_id": lead["owner_rep_id"], "source": lead["source"],
                 "attributes": {k: (float(lead[k]) if k == "company_size" else lead[k]) for k in ("industry", "company_size", "country")
                                if k in lead.index and not pd.isna(lead[k])},
                 "activities": [*base_acts, {"activity_id": "what-if-call",
                                             "occurred_at": step_at, "type": "call"}]}
    again = client.post("/score", headers=auth, json={
        "leads": [described], "as_of": (as_of + pd.Timedelta(minutes=2)).isoformat()}).json()
    assert again["results"][0]["score"] == pytest.approx(call["score_after"], abs=1e-4)
    best = max(view["actions"], key=lambda a: a["points"])
    assert view["best_action"] == (best if best["points"] > 0 else None)


def test_unknown_lead_is_404_without_echo(client, auth):
    r = client.get("/ui/api/lead?id=NOPE-secret-123", headers=auth)
    assert r.status_code == 404 and "secret" not in r.text
    r = client.get("/ui/api/lead", headers=auth)
    assert r.status_code == 400 and "'id'" in r.text


def test_reps_and_model_pages(client, auth):
    reps = client.get("/ui/api/reps", headers=auth).json()
    assert reps["reps"] and reps["oe_chart_svg"].startswith("<svg")
    assert set(reps["metric_labels"]) == set(reps["reps"][0]["metrics"])
    named = client.get(f"/ui/api/reps?period={reps['period']}", headers=auth).json()
    assert [r["rep_id"] for r in named["reps"]] == [r["rep_id"] for r in reps["reps"]]
    bad = client.get("/ui/api/reps?period=2026-13", headers=auth)
    assert bad.status_code == 400 and "'period'" in bad.text and "2026-13" not in bad.text
    bad = client.post("/reps", headers=auth, json={"period": "2026-13"})
    assert bad.status_code == 400 and "2026-13" not in bad.text
    # the same report as POST /reps
    posted = client.post("/reps", headers=auth, json={"period": reps["period"]}).json()
    assert posted["reps"] == reps["reps"]

    model = client.get("/ui/api/model", headers=auth).json()
    assert set(model["models"]) == {"conversion", "dropout"}
    for m in model["models"].values():
        assert m["calibration_svg"].startswith("<svg")
    champions = [v for v in model["versions"] if "champion" in v["aliases"]]
    assert {v["registered_name"] for v in champions} >= {"leadlens-conversion",
                                                          "leadlens-dropout"}


def test_explain_html_report_is_the_lead_page_for_email(client, auth, served_home, tmp_path):
    from click.testing import CliRunner

    from leadlens.cli import main

    runtime, _report, _crm = served_home
    lead_id = client.get("/ui/api/leads?per_page=1&page=2", headers=auth).json()["rows"][0][
        "lead_id"]
    view = client.get(f"/ui/api/lead?id={lead_id}", headers=auth).json()
    out = tmp_path / "lead.html"
    res = CliRunner().invoke(main, ["explain", lead_id, "--format", "html", "--out", str(out)],
                             env={"LEADLENS_HOME": str(runtime.home)}, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    page = out.read_text()
    assert view["waterfall_svg"] in page  # the same chart as the dashboard
    from html import escape

    for r in view["reasons"]:  # in plain words, as on the dashboard
        assert f"{escape(r['text'])}</td>" in page and f"{r['points']:+.1f} pts" in page
        assert "_" not in r["text"]
    for a in view["actions"]:
        assert f"{a['label']}: {a['points']:+.1f} pts" in page
    assert "<script" not in page and not re.search(r"(src|href)\s*=\s*['\"]https?:", page)


def test_open_leads_answered_from_the_table_match_the_computed_path(client, auth,
                                                                   service_module):
    """Open leads asked for by id at the served as_of are answered from the scored-leads table
    (features, model inputs and TreeSHAP values computed once per snapshot); the answers equal
    those computed per request from the warehouse."""
    state = service_module._LIVE["state"]
    served, table = state.scored_leads()
    ids = [str(i) for i in table.frame["lead_id"].iloc[[0, 7, 100, 500, -1]]]
    got = client.post("/score", headers=auth,
                      json={"leads": [{"lead_id": i} for i in ids], "explain": 5}).json()
    computed = served.scorers["conversion"].score_rows(served.source.for_ids(ids, served.as_of),
                                                       5, table.book)
    for a, b in zip(got["results"], computed, strict=True):
        assert a["score"] == pytest.approx(b["score"], abs=1e-9)
        assert [r["feature"] for r in a["reasons"]] == [r["feature"] for r in b["reasons"]]
        assert [r["points"] for r in a["reasons"]] == pytest.approx(
            [r["points"] for r in b["reasons"]], abs=1e-6)
        assert [r["value"] for r in a["reasons"]] == [r["value"] for r in b["reasons"]]
        assert [r["text"] for r in a["reasons"]] == [r["text"] for r in b["reasons"]]
        assert a["percentile"] == b["percentile"]
    risk = client.post("/dropout_risk", headers=auth,
                       json={"leads": [{"lead_id": i} for i in ids]}).json()["results"]
    expect = served.scorers["dropout"].score_rows(served.source.for_ids(ids, served.as_of), 3)
    assert [r["dropout_risk"] for r in risk] == pytest.approx([e["score"] for e in expect],
                                                              abs=1e-9)
    # a past as_of, or a resolved lead among them, takes the computed path and still answers
    mixed = client.post("/score", headers=auth, json={
        "leads": [{"lead_id": ids[0]}, {"lead_id": "L000002"}], "explain": 2}).json()
    assert mixed["results"][0]["score"] == pytest.approx(got["results"][0]["score"], abs=1e-9)


def test_leads_at_risk_sorted_and_filtered_with_a_reason(client, auth, service_module):
    """`at_risk=1` keeps leads likely to convert whose rep is likely to stop, `sort=risk` puts
    the highest score x dropout risk first; each such lead says why in one line."""
    _served, table = service_module._LIVE["state"].scored_leads()
    expected = int(table.frame["at_risk"].sum())
    r = client.get("/ui/api/leads?at_risk=1&sort=risk&per_page=200", headers=auth).json()
    assert r["total"] == expected > 0
    index = dict(zip(table.frame["lead_id"], table.frame["risk_index"], strict=True))
    risk = [index[row["lead_id"]] for row in r["rows"]]
    assert risk == sorted(risk, reverse=True)
    for row in r["rows"]:
        assert row["at_risk"] and row["score"] >= 0.15 and row["dropout_risk"] >= 0.5
        assert row["risk_reason"].startswith("Likely to convert (")
        assert "but the rep is likely to stop" in row["risk_reason"] and "_" not in row[
            "risk_reason"]
    everyone = client.get("/ui/api/leads?sort=risk&per_page=50", headers=auth).json()
    assert everyone["total"] == len(table.frame)
    risk = [index[row["lead_id"]] for row in everyone["rows"]]
    assert risk == sorted(risk, reverse=True)
    assert client.get("/ui/api/leads?sort=zz", headers=auth).status_code == 400
    assert client.get("/ui/api/leads?at_risk=yes", headers=auth).status_code == 400


def test_the_model_page_says_what_each_grade_means(client, auth, service_module):
    _served, table = service_module._LIVE["state"].scored_leads()
    model = client.get("/ui/api/model", headers=auth).json()["models"]["conversion"]
    grades = {g["grade"]: g for g in model["grades"]["rows"]}
    assert list(grades) == ["A", "B", "C", "D"] and model["grades"]["same_cutoffs"]
    shares = table.frame["grade"].value_counts(normalize=True)
    for g, row in grades.items():
        assert row["open_share"] == pytest.approx(float(shares.get(g, 0.0)), abs=1e-4)
    assert sum(row["test_rows"] for row in grades.values()) == model["test_metrics"]["rows"]
    rates = [grades[g]["test_rate"] for g in "ABCD" if grades[g]["test_rate"] is not None]
    assert rates[0] > rates[-1]  # the best grade converted more often than the worst


def test_reasons_of_open_leads_are_phrased_once_per_table(client, auth, service_module,
                                                         monkeypatch):
    """Asking twice for an open lead's reasons phrases them once: the second answer comes from
    the table (the same text); asking for more reasons phrases them again, once."""
    state = service_module._LIVE["state"]
    served, table = state.scored_leads()
    scorer = served.scorers["conversion"]
    lead = str(table.frame["lead_id"].iloc[3])
    table.explained.get("conversion", {}).pop(3, None)
    calls = []
    real = type(scorer).reasons
    monkeypatch.setattr(type(scorer), "reasons",
                        lambda self, e, k: calls.append(k) or real(self, e, k))
    body = {"leads": [{"lead_id": lead}], "explain": 3}
    first = client.post("/score", json=body, headers=auth).json()["results"][0]
    second = client.post("/score", json=body, headers=auth).json()["results"][0]
    assert first == second and len(first["reasons"]) == 3 and calls == [3]
    more = client.post("/score", json={**body, "explain": 5}, headers=auth).json()["results"][0]
    assert calls == [3, 5] and more["reasons"][:3] == first["reasons"]
