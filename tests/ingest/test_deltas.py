"""Delta exports: `ingest.delta_folder` (a folder loaded as one warehouse snapshot, its
`cutoff.txt`), `ingest.tombstones` (deletions, their quarantine) and `ingest.load`'s handling of
them: merging by id, idempotent reloads, deletions counted, nothing published on refusal."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from core.contract import TABLES
from core.settings import IngestConfig, Runtime, Settings
from core.timestamps import export_cutoff
from core.warehouse import Warehouse
from core.warehouse_snapshots import current_warehouse, new_snapshot, snapshot_dir
from ingest.delta_folder import delta_files, load_delta_folder
from ingest.load import IngestError, ingest_files
from tests.conftest import ACTIVITIES_CSV, LEADS_CSV, REPS_CSV, write

LEAD_HEADER = LEADS_CSV.splitlines()[0]
ACT_HEADER = ACTIVITIES_CSV.splitlines()[0]
REP_HEADER = REPS_CSV.splitlines()[0]

# a later delta: L2 converts, a new lead L4 (of a new rep R3), activities on an old and a new lead
DELTA_LEADS = LEAD_HEADER + """
L2,2025-01-02T09:00:00+02:00,R1,referral,2025-03-10T12:00:00Z,,7000,finance,120,b@example.com
L4,2025-03-05,R3,web,,,,software,30,d@example.com
"""
DELTA_ACTIVITIES = ACT_HEADER + """
A5,L4,R3,2025-03-06T10:00:00Z,call,outbound,connected,
A6,L2,R1,2025-03-09T10:00:00Z,meeting,inbound,held,
"""
DELTA_REPS = REP_HEADER + "\nR3,east,2025-02-01,9000\n"


def _runtime(home: Path, max_quarantine_share: float = 0.05) -> Runtime:
    settings = Settings(ingest=IngestConfig(max_quarantine_share=max_quarantine_share))
    return Runtime(settings, home, None)


def _folder(path: Path, **texts: str) -> Path:
    """A delta folder holding `<name>.csv` per keyword (`cutoff` is written as cutoff.txt)."""
    path.mkdir(parents=True)
    for name, text in texts.items():
        write(path / ("cutoff.txt" if name == "cutoff" else f"{name}.csv"), text)
    return path


def _tables(home: Path) -> dict[str, pd.DataFrame]:
    """Every contract table of the published snapshot, sorted by its key."""
    with Warehouse(current_warehouse(home), read_only=True) as wh:
        return {name: wh.read(name).sort_values(spec.key).reset_index(drop=True)
                for name, spec in TABLES.items()}


def _cutoff(home: Path) -> pd.Timestamp | None:
    with Warehouse(current_warehouse(home), read_only=True) as wh:
        return export_cutoff(wh.con)


def _csv(text: str) -> pd.DataFrame:
    return pd.read_csv(io.StringIO(text), dtype=str)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    """A home whose first snapshot holds the conftest CRM (3 leads, 4 activities, 2 reps)."""
    home = tmp_path / "home"
    base = _folder(tmp_path / "base", reps=REPS_CSV, leads=LEADS_CSV, activities=ACTIVITIES_CSV)
    load_delta_folder(_runtime(home), base)
    return home


def _snapshots(home: Path) -> list[str]:
    return sorted(p.name for p in snapshot_dir(home).glob("*.duckdb"))


def test_a_delta_merges_new_and_changed_rows_by_id(tmp_path, home):
    folder = _folder(tmp_path / "d1", leads=DELTA_LEADS, activities=DELTA_ACTIVITIES,
                     reps=DELTA_REPS)
    before = _tables(home)
    summary = load_delta_folder(_runtime(home), folder)
    after = _tables(home)

    old_leads, new_leads = _csv(LEADS_CSV), _csv(DELTA_LEADS)
    merged = pd.concat([old_leads, new_leads]).drop_duplicates("lead_id", keep="last")
    assert sorted(after["leads"]["lead_id"]) == sorted(merged["lead_id"])
    known = set(old_leads["lead_id"])
    assert summary.loaded["leads"].inserted == (~new_leads["lead_id"].isin(known)).sum()
    assert summary.loaded["leads"].updated == new_leads["lead_id"].isin(known).sum()

    expected_won = pd.to_datetime(merged.set_index("lead_id")["converted_at"], utc=True,
                                  format="ISO8601").dt.tz_localize(None)
    got_won = after["leads"].set_index("lead_id")["converted_at"]
    for lead_id, won in expected_won.items():
        assert (pd.isna(won) and pd.isna(got_won[lead_id])) or got_won[lead_id] == won, lead_id
    assert after["leads"].set_index("lead_id").loc["L2", "deal_amount"] == 7000.0
    # rows the delta does not name are as they were
    untouched = before["leads"][~before["leads"]["lead_id"].isin(new_leads["lead_id"])]
    pd.testing.assert_frame_equal(
        after["leads"][after["leads"]["lead_id"].isin(untouched["lead_id"])]
        .reset_index(drop=True), untouched.reset_index(drop=True))

    acts = pd.concat([_csv(ACTIVITIES_CSV), _csv(DELTA_ACTIVITIES)])
    assert sorted(after["activities"]["activity_id"]) == sorted(acts["activity_id"].unique())
    reps = pd.concat([_csv(REPS_CSV), _csv(DELTA_REPS)])
    assert sorted(after["reps"]["rep_id"]) == sorted(reps["rep_id"].unique())
    assert summary.deleted == {}


def test_loading_the_same_delta_folder_twice_changes_no_table(tmp_path, home):
    folder = _folder(tmp_path / "d1", leads=DELTA_LEADS, activities=DELTA_ACTIVITIES,
                     reps=DELTA_REPS, tombstones="table,id\nactivities,A4\nreps,R2\n",
                     cutoff="2025-04-01T00:00:00Z")
    load_delta_folder(_runtime(home), folder)
    once, cutoff_once = _tables(home), _cutoff(home)
    again = load_delta_folder(_runtime(home), folder)
    twice, cutoff_twice = _tables(home), _cutoff(home)

    assert once.keys() == twice.keys()
    for name in once:
        pd.testing.assert_frame_equal(once[name], twice[name], obj=name)
    assert cutoff_once == cutoff_twice == pd.Timestamp("2025-04-01")
    assert again.loaded["leads"].inserted == 0
    assert again.loaded["leads"].updated == len(_csv(DELTA_LEADS))
    assert again.deleted == {"leads": 0, "activities": 0, "reps": 0}


def test_a_tombstone_file_deletes_a_lead_with_its_activities_a_rep_and_an_activity(tmp_path,
                                                                                  home):
    named = pd.DataFrame({"table": ["leads", "reps", "activities", "activities"],
                          "id": ["L1", "R2", "A4", "A1"]})  # A1 is one of L1's own activities
    folder = _folder(tmp_path / "d2", tombstones=named.to_csv(index=False))
    before = _tables(home)
    summary = load_delta_folder(_runtime(home), folder)
    after = _tables(home)

    def ids(table: str) -> set[str]:
        return set(named.loc[named["table"] == table, "id"])

    acts = before["activities"]
    gone_acts = acts[acts["activity_id"].isin(ids("activities")) | acts["lead_id"].isin(ids("leads"))]
    assert set(after["leads"]["lead_id"]) == set(before["leads"]["lead_id"]) - ids("leads")
    assert set(after["reps"]["rep_id"]) == set(before["reps"]["rep_id"]) - ids("reps")
    assert set(after["activities"]["activity_id"]) == (
        set(acts["activity_id"]) - set(gone_acts["activity_id"]))
    assert "L1" not in set(after["activities"]["lead_id"])
    assert summary.deleted == {"leads": len(ids("leads")), "activities": len(gone_acts),
                               "reps": len(ids("reps"))}
    assert summary.results["tombstones"].rows_quarantined == 0


def test_a_deletion_wins_over_a_row_the_same_ingest_loads(tmp_path):
    leads = LEAD_HEADER + "\nL5,2025-02-01,R1,web,,,,software,10,e@example.com\n"
    acts = ACT_HEADER + "\nA9,L5,R1,2025-02-02T10:00:00Z,call,outbound,connected,\n"
    files = {"leads": write(tmp_path / "leads.csv", leads),
             "activities": write(tmp_path / "activities.csv", acts),
             "tombstones": write(tmp_path / "tombstones.csv", "table,id\nleads,L5\n")}
    home = tmp_path / "home"
    with new_snapshot(home) as path, Warehouse(path) as wh:
        summary = ingest_files(wh, IngestConfig(), home / "quarantine", **files)
        assert wh.count("leads") == 0
        assert wh.count("activities") == 0
    assert summary.loaded["leads"].inserted == 1
    assert summary.deleted == {"leads": 1, "activities": 1, "reps": 0}


def test_tombstone_rows_with_an_unknown_table_or_no_id_are_quarantined_by_rule(tmp_path, home):
    text = "table,id\nopportunities,X1\nleads,\n LEADS , L3 \nreps,  \n"
    folder = _folder(tmp_path / "d3", tombstones=text)
    before = _tables(home)
    summary = load_delta_folder(_runtime(home, max_quarantine_share=1.0), folder)

    raw = _csv(text)
    table = raw["table"].str.strip().str.lower()
    no_id = raw["id"].isna() | (raw["id"].fillna("").str.strip() == "")
    bad_table = ~table.isin(["leads", "activities", "reps"])
    r = summary.results["tombstones"]
    assert r.rows_read == len(raw)
    assert r.rows_quarantined == (no_id | bad_table).sum()
    assert r.quarantined_by_rule == {"missing_value": int(no_id.sum()),
                                     "not_allowed_value": int((bad_table & ~no_id).sum())}
    qfile = summary.quarantine_files["tombstones"]
    assert qfile.is_file() and qfile.parent == home / "quarantine"
    stored = pd.read_csv(qfile, dtype=str)
    assert sorted(stored["rule"]) == sorted(["not_allowed_value", "missing_value",
                                             "missing_value"])
    assert "opportunities" in set(stored["value_table"])
    assert sorted(stored["row"].astype(int)) == [i + 1 for i in
                                                 (no_id | bad_table).to_numpy().nonzero()[0]]
    # the one valid row (case and spaces forgiven) still deleted its lead
    assert set(_tables(home)["leads"]["lead_id"]) == set(before["leads"]["lead_id"]) - {"L3"}
    assert summary.deleted["leads"] == 1


def test_too_many_bad_tombstone_rows_refuse_the_whole_delta(tmp_path, home):
    folder = _folder(tmp_path / "d4", tombstones="table,id\nopportunities,X1\nleads,L1\n",
                     leads=DELTA_LEADS)
    before, published = _tables(home), current_warehouse(home)
    with pytest.raises(IngestError, match="tombstones"):
        load_delta_folder(_runtime(home), folder)  # 50% quarantined > the default 5%
    assert current_warehouse(home) == published
    after = _tables(home)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)


def test_a_tombstone_for_an_id_not_in_the_warehouse_deletes_nothing(tmp_path, home):
    folder = _folder(tmp_path / "d5",
                     tombstones="table,id\nleads,L999\nactivities,A999\nreps,R999\n")
    before = _tables(home)
    summary = load_delta_folder(_runtime(home), folder)
    assert summary.deleted == {"leads": 0, "activities": 0, "reps": 0}
    after = _tables(home)
    for name in before:
        pd.testing.assert_frame_equal(before[name], after[name], obj=name)


def test_tombstones_may_come_as_parquet(tmp_path, home):
    folder = tmp_path / "d6"
    folder.mkdir()
    pd.DataFrame({"table": ["activities"], "id": ["A2"]}).to_parquet(folder / "tombstones.parquet")
    assert set(delta_files(folder)) == {"tombstones"}
    summary = load_delta_folder(_runtime(home), folder)
    assert summary.deleted["activities"] == 1
    assert "A2" not in set(_tables(home)["activities"]["activity_id"])


def test_a_cutoff_txt_is_recorded_in_utc(tmp_path, home):
    folder = _folder(tmp_path / "d7", leads=DELTA_LEADS, cutoff="2025-04-01T02:00:00+02:00\n")
    assert _cutoff(home) is None
    load_delta_folder(_runtime(home), folder)
    assert _cutoff(home) == pd.Timestamp("2025-04-01 00:00:00")


@pytest.mark.parametrize("text", ["not a date", "2025-13-45"])
def test_an_unreadable_cutoff_txt_is_refused_naming_the_file(tmp_path, home, text):
    folder = _folder(tmp_path / "d8", leads=DELTA_LEADS, cutoff=text)
    published, files = current_warehouse(home), _snapshots(home)
    with pytest.raises(IngestError) as err:
        load_delta_folder(_runtime(home), folder)
    assert str(folder / "cutoff.txt") in str(err.value)
    assert current_warehouse(home) == published
    assert _snapshots(home) == files


def test_a_cutoff_before_the_data_is_refused_and_nothing_is_published(tmp_path, home):
    folder = _folder(tmp_path / "d9", leads=DELTA_LEADS, cutoff="2025-03-06")  # L2 converts 03-10
    published, files, before = current_warehouse(home), _snapshots(home), _tables(home)
    with pytest.raises(IngestError) as err:
        load_delta_folder(_runtime(home), folder)
    assert str(folder / "cutoff.txt") in str(err.value)
    assert current_warehouse(home) == published
    assert _snapshots(home) == files
    assert "L4" not in set(_tables(home)["leads"]["lead_id"])
    pd.testing.assert_frame_equal(before["leads"], _tables(home)["leads"])
    assert _cutoff(home) is None


@pytest.mark.parametrize("text", ["", "  \n", "now"])
def test_an_empty_or_non_iso_cutoff_txt_is_refused(tmp_path, home, text):
    folder = _folder(tmp_path / "d10", leads=DELTA_LEADS, cutoff=text)
    with pytest.raises(IngestError, match=r"cutoff\.txt"):
        load_delta_folder(_runtime(home), folder)


def test_a_folder_without_contract_files_is_refused(tmp_path, home):
    empty = tmp_path / "empty"
    empty.mkdir()
    only_cutoff = _folder(tmp_path / "only-cutoff", cutoff="2025-04-01")
    published = current_warehouse(home)
    for folder in (empty, only_cutoff):
        with pytest.raises(IngestError) as err:
            load_delta_folder(_runtime(home), folder)
        assert str(folder) in str(err.value)
    assert current_warehouse(home) == published


def test_two_files_for_one_table_are_refused(tmp_path, home):
    folder = _folder(tmp_path / "d11", leads=DELTA_LEADS)
    _csv(DELTA_LEADS).to_parquet(folder / "leads.parquet")
    with pytest.raises(IngestError, match="more than one leads file"):
        load_delta_folder(_runtime(home), folder)


def test_the_base_fixture_loaded_every_row(home):
    tables = _tables(home)
    for name, text in (("leads", LEADS_CSV), ("activities", ACTIVITIES_CSV), ("reps", REPS_CSV)):
        assert len(tables[name]) == len(_csv(text)), name



def test_a_refused_dropped_delta_keeps_its_place_and_a_loaded_one_leaves_only_counts(
        tmp_path, home):
    from ingest.delta_folder import load_dropped

    drop = home / "drop"
    bad = _folder(drop / "01", leads=DELTA_LEADS, cutoff="2024-01-01T00:00:00Z")  # before data
    summary, refused = load_dropped(_runtime(home), bad)
    assert summary is None and "cutoff" in refused
    assert bad.is_dir() and "cutoff" in (bad / "reason.txt").read_text()  # retried next time
    assert not list(drop.glob(".loading-*"))
    good = _folder(drop / "02", leads=DELTA_LEADS, activities=DELTA_ACTIVITIES, reps=DELTA_REPS)
    summary, refused = load_dropped(_runtime(home), good)
    assert refused is None and summary is not None and not good.exists()
    [manifest] = (drop / "loaded").glob("02-*.json")
    text = manifest.read_text()
    assert '"loaded": 2' in text and "@example.com" not in text  # counts, never the rows


def test_a_folder_claimed_by_a_loader_that_died_is_given_back(tmp_path):
    import subprocess
    import sys

    from ingest.delta_folder import reclaim_stale

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    drop = tmp_path / "drop"
    (drop / f".loading-07-{dead}").mkdir(parents=True)
    assert reclaim_stale(drop) == ["07"] and (drop / "07").is_dir()


def test_pushed_batches_merge_in_order_without_wiping_unsent_columns(tmp_path, home):
    from serving.push import merge_pushed

    drop = home / "drop"
    first = LEAD_HEADER + "\nL4,2025-03-05,R1,web,,,,software,30,\n"
    later = "lead_id,created_at,owner_rep_id,source\nL4,2025-03-05,R2,event\n"  # no industry
    _folder(drop / "push-20250101T000000000000Z-aaaa", leads=first)
    _folder(drop / "push-20250101T000001000000Z-bbbb", leads=later)
    assert merge_pushed(_runtime(home)) == (2, [])
    leads = _tables(home)["leads"].set_index("lead_id")
    assert leads.loc["L4", "owner_rep_id"] == "R2" and leads.loc["L4", "source"] == "event"
    assert leads.loc["L4", "industry"] == "software"  # the later push did not send it
    assert not list(drop.glob("push-*")) and len(list((drop / "loaded").glob("*.json"))) == 2
