from dataclasses import dataclass, field

import pytest

from fourreal.cli import main as cli_main
from fourreal.config import ConfigError, from_dict, load_section, read_params, require
from fourreal.assets import AssetsConfig
from fourreal.model4d import Train4DConfig
from fourreal.sampling4d import Sample4DConfig
from fourreal.pseudo4d import Pseudo4DConfig
from fourreal.render import RenderConfig
from fourreal.upsampler import UpsamplerConfig
from fourreal.video_model import BaseModelConfig
from fourreal.videos import VideosConfig
from fourreal.depth import DepthConfig
from fourreal.evaluation import EvaluateConfig
from fourreal.reconstruct import ReconstructConfig
from fourreal.baseline_4real import FourRealConfig
from fourreal.video_to_4d import VideoTo4DConfig

SECTIONS = {"videos": VideosConfig, "pseudo4d": Pseudo4DConfig, "assets": AssetsConfig, "render": RenderConfig,
            "train_base": BaseModelConfig, "train_upsampler": UpsamplerConfig, "train_4d": Train4DConfig,
            "sample_4d": Sample4DConfig, "train_depth": DepthConfig, "reconstruct": ReconstructConfig,
            "evaluate": EvaluateConfig, "baseline_4real": FourRealConfig, "video_to_4d": VideoTo4DConfig}

from conftest import REPO


@dataclass
class Inner:
    size: int = 4

    def __post_init__(self):
        require(self.size > 0, "size", "must be > 0")


@dataclass
class Outer:
    name: str
    rate: float = 1.0
    flags: list[str] = field(default_factory=list)
    inner: Inner = field(default_factory=Inner)


def test_valid_section_with_defaults_and_int_to_float():
    cfg = from_dict(Outer, {"name": "x", "rate": 2, "inner": {"size": 3}}, "params.yaml: s")
    assert cfg.rate == 2.0 and isinstance(cfg.rate, float)
    assert cfg.inner.size == 3 and cfg.flags == []


@pytest.mark.parametrize(
    "data, message",
    [
        ({"name": "x", "bogus": 1}, "params.yaml: s.bogus: unknown key"),
        ({"rate": 1.0}, "params.yaml: s.name: missing"),
        ({"name": 3}, "params.yaml: s.name: expected a string"),
        ({"name": "x", "rate": "fast"}, "params.yaml: s.rate: expected a number"),
        ({"name": "x", "flags": "a"}, "params.yaml: s.flags: expected a list"),
        ({"name": "x", "inner": {"size": 0}}, "params.yaml: s.inner.size: must be > 0"),
        ({"name": "x", "inner": {"size": True}}, "params.yaml: s.inner.size: expected an integer"),
    ],
)
def test_errors_name_the_key(data, message):
    with pytest.raises(ConfigError) as exc:
        from_dict(Outer, data, "params.yaml: s")
    assert str(exc.value).startswith(message)


def test_repository_params_load_and_every_section_has_a_config():
    params = read_params(REPO / "params.yaml")
    assert set(params) == set(SECTIONS)
    configs = {name: load_section(cls, name, REPO / "params.yaml") for name, cls in SECTIONS.items()}
    assert configs["videos"].clip_frames == params["videos"]["clip_frames"]
    assert configs["render"].light_energy == tuple(params["render"]["light_energy"])
    assert configs["reconstruct"].sources == params["reconstruct"]["sources"]


def test_out_of_range_pseudo4d_value():
    with pytest.raises(ConfigError, match=r"params.yaml: pseudo4d.base_crop: must be in \(0, 1\]"):
        from_dict(Pseudo4DConfig, {"base_crop": 1.5}, "params.yaml: pseudo4d")


@pytest.mark.parametrize("profile", ["small", "paper"])
def test_profiles_apply_to_params_and_validate(tmp_path, profile):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    assert cli_main(["profile", "apply", profile, "--params", str(params), "--profiles", str(REPO / "profiles")]) == 0
    text = params.read_text()
    assert "# Every parameter of every stage" in text  # comments survive
    for name, cls in SECTIONS.items():
        load_section(cls, name, params)


def test_profile_with_unknown_key_is_refused(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    (tmp_path / "bad.yaml").write_text("videos:\n  hieght: 10\n")
    assert cli_main(["profile", "apply", "bad", "--params", str(params), "--profiles", str(tmp_path)]) == 2
    assert params.read_text() == (REPO / "params.yaml").read_text()
