from dataclasses import dataclass, field

import pytest

from fourreal.data_making.pseudo4d import Pseudo4DConfig
from fourreal.running.cli import main as cli_main
from fourreal.running.config import ConfigError, from_dict, read_params, require
from fourreal.running.params import SECTIONS, SHARED, config_class, validate_params

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
        ({"name": "x", "inner": {"size": 0}}, "params.yaml: s.inner.size = 0: must be > 0"),
        ({"name": "x", "inner": {"size": True}}, "params.yaml: s.inner.size: expected an integer"),
    ],
)
def test_errors_name_the_key(data, message):
    with pytest.raises(ConfigError) as exc:
        from_dict(Outer, data, "params.yaml: s")
    assert str(exc.value).startswith(message)


def test_repository_params_load_and_every_section_has_a_config():
    params = read_params(REPO / "params.yaml")
    assert set(params) == set(SECTIONS) | set(SHARED)
    configs = validate_params(REPO / "params.yaml")
    assert configs["videos"].clip_frames == params["videos"]["clip_frames"]
    assert configs["render"].light_energy == tuple(params["render"]["light_energy"])
    assert configs["reconstruct"].sources == params["reconstruct"]["sources"]


def test_config_classes_are_named_after_their_sections():
    for section, (_, name) in SECTIONS.items():
        camel = "".join(part[:1].upper() + part[1:] for part in section.split("_"))
        assert name == camel.replace("4d", "4D").replace("4real", "4Real") + "Config", section
    for section in SHARED:  # a section of shared defaults is the one its class names
        assert config_class(section).DEFAULTS_SECTION == section


def test_out_of_range_pseudo4d_value():
    with pytest.raises(ConfigError, match=r"^params.yaml: pseudo4d.base_crop = 1.5: must be in \(0, 1\]$"):
        from_dict(Pseudo4DConfig, {"base_crop": 1.5}, "params.yaml: pseudo4d")


def test_range_errors_name_the_nested_key_and_its_value():
    from fourreal.training.train_configs import TrainBaseConfig

    data = {"optim": {"phases": [{"steps": 5, "height": 16, "width": 2, "frames": 2, "batch_size": 1}]}}
    with pytest.raises(ConfigError, match=r"^params.yaml: train_base.optim.phases\[0\].width = 2: must be >= 4$"):
        from_dict(TrainBaseConfig, data, "params.yaml: train_base")


def test_the_whole_file_is_checked_sections_included(tmp_path):
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["evaluate"]["workers"] = -1
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match=r"^params.yaml: evaluate.workers = -1: must be >= 0"):
        validate_params(tmp_path / "params.yaml")
    params["evaluate"]["workers"] = 0
    params["pseudo4D"] = {}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match="pseudo4D: unknown section"):
        validate_params(tmp_path / "params.yaml")
    del params["pseudo4D"], params["render"]
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    with pytest.raises(ConfigError, match="section 'render' missing"):
        validate_params(tmp_path / "params.yaml")


def _params_with(tmp_path, change) -> "Path":
    """A copy of the repository's params.yaml with ``change(params)`` applied."""
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    change(params)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


def test_optimizer_blocks_take_the_keys_they_leave_out_from_optim_defaults(tmp_path):
    from fourreal.running.config import load_section
    from fourreal.training.train_configs import Train4DConfig, TrainBaseConfig

    params = read_params(REPO / "params.yaml")
    shared, block = params["optim_defaults"], params["train_4d"]["pseudo"]
    assert "compile" not in block and "lr" in block  # a block writes only what differs
    t4 = load_section(Train4DConfig, "train_4d", REPO / "params.yaml")
    assert t4.pseudo.compile == shared["compile"] and t4.pseudo.lr == block["lr"] != shared["lr"]

    def change(p):
        p["optim_defaults"]["log_every"] = 7
        p["train_base"]["optim"]["log_every"] = 3

    path = _params_with(tmp_path, change)
    assert load_section(TrainBaseConfig, "train_base", path).optim.log_every == 3  # the block's own key wins
    configs = validate_params(path)
    assert configs["train_4d"].pseudo.log_every == configs["train_4d"].render.log_every == 7
    assert configs["train_upsampler"].optim.log_every == 7


def test_a_bad_shared_default_is_named_in_its_own_section(tmp_path):
    path = _params_with(tmp_path, lambda p: p["optim_defaults"].update(lr=-1.0))
    with pytest.raises(ConfigError, match=r"^params.yaml: optim_defaults.lr = -1.0: must be > 0$"):
        validate_params(path)
    path = _params_with(tmp_path, lambda p: p["optim_defaults"].update(lrr=0.1))
    with pytest.raises(ConfigError, match=r"^params.yaml: optim_defaults.lrr: unknown key"):
        validate_params(path)


def test_params_yaml_is_written_the_way_dvc_rewrites_it(tmp_path):
    """`dvc exp run -S key=value` rewrites params.yaml (DVC's ``apply_overrides``: lists
    become block lists, comments after a list are dropped): the file is kept in the form
    that comes out, so an experiment changes exactly the lines of the values it sets."""
    from dvc.utils.hydra import apply_overrides

    path = tmp_path / "params.yaml"
    original = (REPO / "params.yaml").read_text()
    path.write_text(original)
    apply_overrides(str(path), ["pseudo4d.seed=1"])
    changed = [(a, b) for a, b in zip(original.splitlines(), path.read_text().splitlines()) if a != b]
    assert changed == [("  seed: 0", "  seed: 1")] and len(path.read_text()) == len(original)


@pytest.mark.parametrize("profile", ["small", "paper"])
def test_profiles_apply_to_params_and_validate(tmp_path, profile):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    assert cli_main(["profile", "apply", profile, "--params", str(params), "--profiles", str(REPO / "profiles")]) == 0
    text = params.read_text()
    assert "# Every parameter of every stage" in text  # comments survive
    validate_params(params)


def test_a_profile_sets_a_block_key_that_only_optim_defaults_has(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    (tmp_path / "fast.yaml").write_text("train_4d:\n  render:\n    compile: true\n")
    assert cli_main(["profile", "apply", "fast", "--params", str(params), "--profiles", str(tmp_path)]) == 0
    configs = validate_params(params)
    assert configs["train_4d"].render.compile and not configs["train_4d"].pseudo.compile
    (tmp_path / "bad.yaml").write_text("train_4d:\n  render:\n    compiled: true\n")
    assert cli_main(["profile", "apply", "bad", "--params", str(params), "--profiles", str(tmp_path)]) == 2


def test_profile_with_unknown_key_is_refused(tmp_path):
    params = tmp_path / "params.yaml"
    params.write_text((REPO / "params.yaml").read_text())
    (tmp_path / "bad.yaml").write_text("videos:\n  hieght: 10\n")
    assert cli_main(["profile", "apply", "bad", "--params", str(params), "--profiles", str(tmp_path)]) == 2
    assert params.read_text() == (REPO / "params.yaml").read_text()


@pytest.mark.parametrize("section", ["sample_4d", "video_to_4d"])
@pytest.mark.parametrize("value", [0.0, 1.5])
def test_sigma_max_is_a_flow_time(section, value):
    with pytest.raises(ConfigError, match=rf"^params.yaml: {section}.sigma_max = {value}: must be in \(0, 1\]"):
        from_dict(config_class(section), {"sigma_max": value}, f"params.yaml: {section}")
    assert from_dict(config_class(section), {"sigma_max": 0.95}, f"params.yaml: {section}").sigma_max == 0.95


@pytest.mark.parametrize("value", ["0", "1.5", "high"])
def test_the_cli_refuses_a_sigma_max_outside_the_flow_times(value, capsys):
    with pytest.raises(SystemExit) as exc:
        cli_main(["grid", "--row", "r.mp4", "--column", "c.mp4", "--sigma-max", value])
    assert exc.value.code == 2 and "is not a flow time in (0, 1]" in capsys.readouterr().err
