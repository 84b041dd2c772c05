"""One module spells model names and tag keys: a stray spelling elsewhere is how a tag written
under one key came to be read under another (the dashboard never showed why a version was
forced)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from core import names

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("core", "ingest", "features", "reps", "training", "serving", "leadlens")
TAG_KEYS = {v for cls in (names.VersionTag, names.RunTag)
            for k, v in vars(cls).items() if k.isupper() and ("_" in v or "." in v)}
"""The distinctive keys ("kind" and "until" are also ordinary words of other formats)."""


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _strings(path: Path) -> list[tuple[int, str]]:
    """Every string literal but docstrings, with its line."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip = _docstrings(tree)
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in skip]


def _keys_read_or_written(path: Path) -> list[tuple[int, str]]:
    """String literals used as a key: `x["k"]`, `x.get("k")`, `set_tag("k", ...)` and the like
    (a dict literal's keys are output fields, not tag reads)."""
    out = []
    for n in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(n, ast.Subscript) and isinstance(n.slice, ast.Constant):
            out.append((n.lineno, n.slice.value))
        elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.args \
                and n.func.attr in ("get", "set_tag", "set_model_version_tag", "setdefault") \
                and isinstance(n.args[0], ast.Constant):
            out.append((n.lineno, n.args[0].value))
    return [(line, v) for line, v in out if isinstance(v, str)]


def test_no_other_module_spells_a_registered_name_or_tag_key():
    stray = []
    for room in ROOMS:
        for path in sorted((ROOT / room).rglob("*.py")):
            if path == ROOT / "core" / "names.py":
                continue
            for line, text in _strings(path):
                hits = [n for n in names.REGISTERED_NAMES.values() if n in text]
                hits += ["champion"] if text == names.CHAMPION else []
                if hits:
                    stray.append(f"{path.relative_to(ROOT)}:{line}: {', '.join(hits)}")
            stray += [f"{path.relative_to(ROOT)}:{line}: {key}"
                      for line, key in _keys_read_or_written(path) if key in TAG_KEYS]
    assert not stray, "spell these through core.names:\n" + "\n".join(stray)


def test_the_check_would_catch_a_stray_tag(tmp_path):
    planted = tmp_path / "reader.py"
    planted.write_text('def f(t):\n    """Reads promotion_forced_reason."""\n'
                       '    return t.get("promotion_forced_reason")\n')
    assert _keys_read_or_written(planted) == [(3, "promotion_forced_reason")]


def test_registered_name_refuses_an_unknown_kind():
    assert names.registered_name(names.LEAD_QUALITY) == "leadlens-lead-quality"
    with pytest.raises(ValueError, match="unknown model kind 'churn'"):
        names.registered_name("churn")
