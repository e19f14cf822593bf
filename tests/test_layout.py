"""dvc.yaml names the paths of fourreal/running/layout.py: every stage writes inside its directory,
depends on the fixed paths its entry point reads from the layout, and on every data path
of its own parameters."""

from __future__ import annotations

import ast
from pathlib import PurePosixPath

import yaml

from fourreal.running import layout
from fourreal.running.config import read_params

from conftest import REPO

STAGES = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def body(name: str) -> dict:
    return STAGES[name].get("do", STAGES[name])


def paths(entries: list) -> list[str]:
    """The paths of a dvc.yaml list of deps, outs, metrics or plots (with or without options)."""
    return [next(iter(e)) if isinstance(e, dict) else str(e) for e in entries]


def outputs(name: str) -> list[str]:
    b = body(name)
    return paths(b.get("outs", []) + b.get("metrics", []) + b.get("plots", []))


def covered(path: str, listed: list[str]) -> bool:
    """Whether ``path`` is one of ``listed``, inside one, or a directory holding one."""
    p = PurePosixPath(path)
    return any(p == PurePosixPath(q) or PurePosixPath(q) in p.parents or p in PurePosixPath(q).parents
               for q in listed)


def layout_names(entry: str) -> set[str]:
    """The names a stage's entry point takes from fourreal.running.layout."""
    tree = ast.parse((REPO / entry).read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "fourreal.running.layout":
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "layout":
            names.add(node.attr)
    return names


def test_every_stage_has_a_directory_and_writes_only_inside_it():
    assert set(layout.STAGE_DIRS) == set(STAGES)
    for name in STAGES:
        outside = [o for o in outputs(name) if not o.startswith(layout.STAGE_DIRS[name] + "/")]
        assert not outside, f"{name} writes {outside} outside {layout.STAGE_DIRS[name]}"


def test_the_fixed_paths_a_stage_reads_are_its_dependencies():
    by_entry: dict[str, list[str]] = {}
    for name in STAGES:
        entry = body(name)["cmd"].split("python -m ")[1].split()[0].replace(".", "/") + ".py"
        by_entry.setdefault(entry, []).extend(paths(body(name).get("deps", [])) + outputs(name))
    for entry, listed in by_entry.items():
        for name in layout_names(entry):
            value = getattr(layout, name)
            if isinstance(value, str):
                assert covered(value, listed), f"{entry} reads layout.{name} = {value}, not in dvc.yaml"
    # the 4D phases: each variant's phase 1 model is phase 2's start
    assert layout.model_4d("${key}", "pseudo") in paths(body("finetune_4d")["deps"])
    for phase, name in (("pseudo", "train_4d"), ("render", "finetune_4d")):
        assert all(o.startswith(layout.variant_dir(phase, "${key}") + "/") for o in outputs(name))


def data_paths(value) -> list[str]:
    """Every string under data/ in a params value, at any depth."""
    if isinstance(value, dict):
        return [p for v in value.values() for p in data_paths(v)]
    if isinstance(value, list):
        return [p for v in value for p in data_paths(v)]
    return [value] if isinstance(value, str) and value.startswith(layout.DATA + "/") else []


def test_the_data_paths_of_a_stage_s_own_parameters_are_its_dependencies():
    params = read_params(REPO / "params.yaml")
    for name in STAGES:
        section = "train_4d" if name == "finetune_4d" else name
        if name == "finetune_4d" or section not in params:  # finetune_4d starts from phase 1, not base_model
            continue
        deps = paths(body(name).get("deps", []))
        missing = [p for p in data_paths(params[section]) if not covered(p, deps)]
        assert not missing, f"{name}: its parameters name {missing}, not among its deps in dvc.yaml"
