"""docs/RELIABILITY.md may only cite tests that exist."""

import ast
import re

from conftest import REPO


def test_every_cited_test_exists():
    doc = (REPO / "docs" / "RELIABILITY.md").read_text()
    cited = re.findall(r"`(tests/[\w/]+\.py)::(\w+)`", doc)
    assert len(cited) >= 30
    missing = []
    for path, name in cited:
        file = REPO / path
        names = {n.name for n in ast.walk(ast.parse(file.read_text())) if isinstance(n, ast.FunctionDef)} \
            if file.is_file() else set()
        if name not in names:
            missing.append(f"{path}::{name}")
    assert not missing, missing
