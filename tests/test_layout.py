"""The rooms and the way dependencies flow between them (README, "Layout")."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {
    "core": {"core"},
    "ingest": {"core", "ingest"},
    "features": {"core", "features"},
    "reps": {"core", "features", "reps"},
    "monitoring": {"core", "features", "monitoring"},
    "training": {"core", "features", "reps", "training"},
    "serving": {"core", "ingest", "features", "reps", "monitoring", "serving"},
    "leadlens": {"core", "ingest", "features", "reps", "monitoring", "training", "serving",
                 "leadlens"},
}


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            out.add(node.module.split(".")[0])
    return out & set(ALLOWED)


def test_dependencies_flow_one_way():
    wrong = [f"{path.relative_to(ROOT)} imports {sorted(_imports(path) - allowed)}"
             for room, allowed in ALLOWED.items() for path in sorted((ROOT / room).rglob("*.py"))
             if _imports(path) - allowed]
    assert not wrong, "\n".join(wrong)


def test_no_room_holds_more_than_a_third_of_the_code():
    lines = {room: sum(len(p.read_text(encoding="utf-8").splitlines())
                       for p in (ROOT / room).rglob("*.py")) for room in ALLOWED}
    total = sum(lines.values())
    assert max(lines.values()) <= total / 3, lines
