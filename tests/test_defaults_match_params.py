"""One source of truth for every default: each config dataclass's field defaults are the
values of its section in the repository's params.yaml, so a config built in code (a
notebook, a test, the library) behaves as `dvc repro` does. A block with shared defaults
(an optimizer block) is compared as it is loaded: over its section of shared defaults,
whose values are its class's own defaults."""

import dataclasses
from pathlib import Path

import pytest

from fourreal.running.config import block_data, read_params
from fourreal.running.params import SECTIONS, SHARED, config_class

PARAMS = read_params(Path(__file__).resolve().parents[1] / "params.yaml")
# fields without a default on purpose: they name the user's own inputs
REQUIRED = {"videos.input_dir"}
# empty by default on purpose: which rows of the tables to train and sample is the pipeline's
# choice, listed in params.yaml only (a config built in code names its own)
CHOSEN_IN_PARAMS = {"train_4d.variants", "sample_4d.variants"}
# set by every block itself, not shared
PER_BLOCK = {"optim_defaults.phases"}


def default_of(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def as_plain(value):
    """A default as params.yaml would write it: dataclasses as dicts, tuples as lists."""
    if dataclasses.is_dataclass(value):
        return {f.name: as_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [as_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: as_plain(v) for k, v in value.items()}
    return value


def mismatches(cls: type, given: dict, path: str, instance=None) -> list[str]:
    """Every field of ``cls`` whose default (or, for a nested config, whose value in the
    default ``instance``) differs from ``given``, as ``path: default != yaml value``."""
    found = []
    for f in dataclasses.fields(cls):
        key = f"{path}.{f.name}"
        default = getattr(instance, f.name) if instance is not None else default_of(f)
        if default is dataclasses.MISSING:
            if key not in REQUIRED:
                found.append(f"{key}: no default")
            continue
        if key in PER_BLOCK:
            continue
        if f.name not in given:
            found.append(f"{key}: missing from params.yaml")
        elif key in CHOSEN_IN_PARAMS:
            assert not default, f"{key}: empty by default, given in params.yaml"
        elif dataclasses.is_dataclass(default) and isinstance(given[f.name], dict):
            found += mismatches(type(default), block_data(type(default), given[f.name], PARAMS), key, default)
        elif as_plain(default) != given[f.name]:
            found.append(f"{key}: default {as_plain(default)!r} != params.yaml {given[f.name]!r}")
    return found


@pytest.mark.parametrize("section", sorted([*SECTIONS, *SHARED]))
def test_the_dataclass_defaults_are_the_params_yaml_values(section):
    assert mismatches(config_class(section), PARAMS[section], section) == []


def test_a_mismatch_is_found():
    @dataclasses.dataclass
    class Inner:
        a: int = 1

    @dataclasses.dataclass
    class Outer:
        inner: Inner = dataclasses.field(default_factory=Inner)
        b: str = "x"

    assert mismatches(Outer, {"inner": {"a": 1}, "b": "x"}, "s") == []
    assert mismatches(Outer, {"inner": {"a": 2}, "b": "x"}, "s") == ["s.inner.a: default 1 != params.yaml 2"]
    assert mismatches(Outer, {"inner": {"a": 1}}, "s") == ["s.b: missing from params.yaml"]

    @dataclasses.dataclass
    class Section:  # a nested default built with its own values: those are compared
        inner: Inner = dataclasses.field(default_factory=lambda: Inner(a=3))

    assert mismatches(Section, {"inner": {"a": 3}}, "s") == []
    assert mismatches(Section, {"inner": {"a": 1}}, "s") == ["s.inner.a: default 3 != params.yaml 1"]
