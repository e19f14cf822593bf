"""What results depend on: import closures, dvc.yaml's code dependencies, resume keys."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import yaml

from fourreal.running.params import missing_shared_params
from fourreal.running.provenance import fingerprint, import_closure, run_key, stage_code_deps
from fourreal.training.optim import OptimConfig, Phase

from conftest import REPO


def write(root: Path, name: str, text: str) -> None:
    (root / name).parent.mkdir(parents=True, exist_ok=True)
    (root / name).write_text(text)


def test_closure_follows_nested_imports_submodules_and_worker_processes(tmp_path):
    write(tmp_path, "fourreal/__init__.py", "")
    write(tmp_path, "fourreal/a.py", "import numpy\nfrom fourreal import b\n")
    write(tmp_path, "fourreal/b.py", "def f():\n    from fourreal.c import g\n    return g\n")
    write(tmp_path, "fourreal/c.py", "import sys\ncmd = [sys.executable, '-m', 'fourreal.d']\n"
                                     "def g():\n    '''fourreal.e is named in prose only.'''\n")
    write(tmp_path, "fourreal/d.py", "from . import sub\n")
    write(tmp_path, "fourreal/sub/__init__.py", "")
    write(tmp_path, "fourreal/e.py", "")
    write(tmp_path, "fourreal/unrelated.py", "import fourreal.a\n")
    write(tmp_path, "stages/s.py", "from fourreal.a import b\n")
    closure = {str(p) for p in import_closure(tmp_path / "stages/s.py", tmp_path)}
    assert closure == {"stages/s.py", "fourreal/__init__.py", "fourreal/a.py", "fourreal/b.py", "fourreal/c.py",
                       "fourreal/d.py", "fourreal/sub/__init__.py"}


def test_dvc_yaml_code_deps_are_exactly_each_stages_import_closure():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    wrong = {name: (sorted(set(c) - set(d)), sorted(set(d) - set(c)))
             for name, (d, c) in stage_code_deps(stages, REPO).items() if d != c}
    assert not wrong, f"dvc.yaml code deps differ from the import closures (missing, surplus): {wrong}; " \
                      "run `python scripts/dvc_deps.py`"


def test_dvc_yaml_params_list_the_shared_sections_each_stage_reads():
    """A training stage reads its optimizer block over optim_defaults: a change there must rerun it."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert missing_shared_params(stages) == {}, "run `python scripts/dvc_deps.py`"
    assert missing_shared_params({"s": {"cmd": "", "params": ["train_4d"]}}) == {"s": ["optim_defaults"]}
    assert missing_shared_params({"s": {"cmd": "", "params": ["sample_4d.views", "train_depth"]}}) == {}


def test_every_stage_runs_after_the_params_check():
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    after = [name for name, s in stages.items() if "data/params.ok" in s.get("do", s)["deps"]]
    assert sorted(after) == sorted(set(stages) - {"check_params"})


def copy_sources(dst: Path) -> Path:
    for sub in ("fourreal", "stages"):
        shutil.copytree(REPO / sub, dst / sub, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def test_run_key_covers_configs_inputs_and_the_imported_code_only(tmp_path):
    root = copy_sources(tmp_path / "src")
    entry = root / "stages/train_4d.py"
    data = tmp_path / "grids"
    write(data, "a.grid.npz", "grid a")
    key = run_key(entry, [{"lr": 1e-3}], [data], root)
    assert run_key(entry, [{"lr": 1e-3}], [data], root) == key  # deterministic
    assert run_key(entry, [{"lr": 2e-3}], [data], root) != key  # a config
    (root / "fourreal/running/cli.py").write_text((root / "fourreal/running/cli.py").read_text() + "\n# an unrelated edit\n")
    assert run_key(entry, [{"lr": 1e-3}], [data], root) == key  # not imported by train_4d
    write(data, "a.grid.npz", "grid a, new content")
    changed_data = run_key(entry, [{"lr": 1e-3}], [data], root)
    assert changed_data != key  # the data's content
    (root / "fourreal/models/sync.py").write_text((root / "fourreal/models/sync.py").read_text() + "\n# a sync-layer edit\n")
    assert run_key(entry, [{"lr": 1e-3}], [data], root) != changed_data  # imported (through model4d)


def test_run_key_ignores_only_the_resume_neutral_fields():
    optim = OptimConfig(checkpoint_every=500, log_every=50, time_limit_s=0.0)
    key = run_key("stages/train_base.py", [{"model": "small"}, optim])
    same = replace(optim, checkpoint_every=100, log_every=10, time_limit_s=470.0, max_shard_mb=5.0)
    assert run_key("stages/train_base.py", [{"model": "small"}, same]) == key  # a stopped run continues
    for changed in (replace(optim, lr=1e-4), replace(optim, seed=1), replace(optim, compile=True),
                    replace(optim, phases=[Phase(10, 16, 32, 8, 4)])):
        assert run_key("stages/train_base.py", [{"model": "small"}, changed]) != key


def test_fingerprint_is_of_content_and_names(tmp_path):
    write(tmp_path, "d/x.bin", "1")
    first = fingerprint([tmp_path / "d"], relative_to=tmp_path)
    write(tmp_path, "d/x.bin", "2")
    assert fingerprint([tmp_path / "d"], relative_to=tmp_path) != first
    write(tmp_path, "d/x.bin", "1")
    assert fingerprint([tmp_path / "d"], relative_to=tmp_path) == first
    (tmp_path / "d/x.bin").rename(tmp_path / "d/y.bin")
    assert fingerprint([tmp_path / "d"], relative_to=tmp_path) != first


def test_sample_4d_depends_on_every_variants_model_and_writes_every_variant():
    """A variant added to params.yaml without its model in dvc.yaml's deps would sample from a
    stale model; one missing from the outs would not be versioned."""
    stage = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]["sample_4d"]
    variants = yaml.safe_load((REPO / "params.yaml").read_text())["sample_4d"]["variants"]
    models = {v["model"] for v in variants.values() if v["model"]}
    assert models <= set(stage["deps"]), f"sample_4d deps lack {sorted(models - set(stage['deps']))}"
    outs = {f"data/sample_4d/{name}" for name in variants}
    listed = {o if isinstance(o, str) else next(iter(o)) for o in stage["outs"]}  # a path, or one with options
    assert outs <= listed, f"sample_4d outs lack {sorted(outs - listed)}"
