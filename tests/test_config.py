"""viwo.toml: discovery order, validation with located errors, provenance, what reaches the Runtime."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from viwoscript.config import (
    DEFAULT,
    Config,
    ConfigError,
    apply_toml,
    find_config,
    load_config,
    user_config_file,
)
from viwoscript.limits import CLI_DEFAULTS, Limits


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    return tmp_path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file(tmp_path):
    cfg = load_config()
    assert cfg.path is None
    assert cfg.limits() == CLI_DEFAULTS
    assert cfg.canvas_size == (1024, 1024)
    assert cfg.roots == [tmp_path.resolve()]
    assert cfg.out_dir == tmp_path.resolve() / "viwo-out"
    assert cfg.grants == "default"
    assert cfg.models == {}
    assert all(s.source == DEFAULT for s in cfg.settings.values())


def test_user_config_dir_is_the_fallback(tmp_path):
    user = write(user_config_file(), "[canvas]\nwidth = 640\n")
    assert user.is_relative_to(tmp_path / "xdg-config")
    cfg = load_config()
    assert cfg.path == user.resolve()
    assert cfg.canvas_size == (640, 1024)
    assert cfg.settings["canvas.width"].source == str(user.resolve())
    assert cfg.settings["canvas.height"].source == DEFAULT


def test_local_file_wins_over_user_and_explicit_over_both(tmp_path):
    write(user_config_file(), "[canvas]\nwidth = 640\n")
    local = write(tmp_path / "viwo.toml", "[canvas]\nwidth = 800\n")
    other = write(tmp_path / "conf" / "other.toml", "[canvas]\nwidth = 320\n")
    assert find_config() == local
    assert load_config().canvas_size[0] == 800
    assert find_config(other) == other
    assert load_config(other).canvas_size[0] == 320


def test_missing_explicit_file_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "nope.toml")


def test_full_file_and_relative_paths(tmp_path):
    (tmp_path / "proj" / "images").mkdir(parents=True)
    conf = write(tmp_path / "proj" / "viwo.toml", """
[limits]
gas = 5000
timeout = 2.5
max_depth = 100

[canvas]
width = 512
height = 768

[paths]
roots = [".", "images"]
out = "renders"

[[grants]]
type = "diffusers.generate"
params = { max_steps = 30, allowed_models = ["sd15"] }

[[grants]]
type = "upscale"
provider = "fake"

[models]
sd15 = "stable-diffusion-v1-5/stable-diffusion-v1-5"
""")
    cfg = load_config(conf)
    base = conf.parent.resolve()
    assert cfg.limits() == Limits(gas=5000, timeout=2.5, max_depth=100)
    assert cfg.canvas_size == (512, 768)
    assert cfg.roots == [base, base / "images"]
    assert cfg.out_dir == base / "renders"
    assert cfg.grants == [
        {"type": "diffusers.generate", "params": {"max_steps": 30, "allowed_models": ["sd15"]}},
        {"type": "upscale", "params": {}, "provider": "fake"},
    ]
    assert cfg.models == {"sd15": "stable-diffusion-v1-5/stable-diffusion-v1-5"}
    data = cfg.to_dict()
    json.dumps(data)  # JSON-friendly
    assert data["paths.out"] == {"value": str(base / "renders"), "source": str(conf.resolve())}
    assert data["limits.max_list"]["source"] == DEFAULT


def test_unlimited_and_empty_grants(tmp_path):
    conf = write(tmp_path / "viwo.toml", 'grants = []\n[limits]\ngas = "unlimited"\ntimeout = "unlimited"\n')
    cfg = load_config(conf)
    assert cfg.limits().gas is None and cfg.limits().timeout is None
    assert cfg.grants == []


def test_flags_override_with_their_own_source():
    cfg = Config()
    cfg.set("limits.gas", 10, "--gas")
    cfg.set("limits.timeout", None, "--timeout")  # None: flag not given, nothing changes
    assert cfg.settings["limits.gas"].source == "--gas"
    assert cfg.settings["limits.timeout"].source == DEFAULT
    cfg.set("limits.gas", None, "--gas", allow_none=True)
    assert cfg.limits().gas is None


def test_runtime_kwargs_build_a_runtime(tmp_path):
    from viwoscript.runtime import Runtime

    conf = write(tmp_path / "viwo.toml", "[limits]\ngas = 50\n[canvas]\nwidth = 64\nheight = 32\n")
    rt = Runtime(**load_config(conf).runtime_kwargs())
    assert rt.canvas_size == (64, 32)
    assert rt.limits.gas == 50
    assert rt.roots == [tmp_path.resolve()]
    with pytest.raises(Exception, match="gas"):
        rt.run("(std.seq (std.let i 0) (std.while true (std.set i (+ i 1))))")


@pytest.mark.parametrize("text, message, line", [
    ("[limit]\ngas = 1\n", "unknown table [limit]", 1),
    ("[limits]\nmax_steps = 1\n", "unknown key limits.max_steps", 2),
    ("[limits]\ngas = -1\n", "limits.gas must be a positive integer", 2),
    ("[limits]\ngas = 1.5\n", "limits.gas must be a positive integer", 2),
    ("[limits]\ntimeout = true\n", "limits.timeout must be a positive number", 2),
    ("\n[canvas]\nwidth = 0\n", "canvas.width must be an integer from 1 to", 3),
    ("[canvas]\nheight = 99999\n", "canvas.height must be an integer", 2),
    ("[paths]\nroots = \".\"\n", "paths.roots must be a list", 2),
    ("[paths]\nout = 3\n", "paths.out must be a folder name", 2),
    ("limits = 3\n", "[limits] must be a table", 1),
    ("[[grants]]\nparams = {}\n", "grants[0] needs a type", 1),
    ("[[grants]]\ntype = \"x\"\nlimit = 3\n", "unknown key 'limit'", 3),
    ("[[grants]]\ntype = \"x\"\nparams = 3\n", "params must be a table", 3),
    ("[[grants]]\ntype = \"x\"\nprovider = 3\n", "provider must be a string", 3),
    ("grants = 3\n", "grants must be an array of tables", 1),
    ("[models]\nsd = 1\n", "models.sd must be a string", 2),
])
def test_invalid_files_are_reported_where_they_go_wrong(tmp_path, text, message, line):
    conf = write(tmp_path / "viwo.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config()
    err = info.value
    assert message in err.message
    assert err.span is not None and err.span.line == line and err.span.file == str(conf.resolve())
    rendered = err.render()
    assert f"viwo.toml:{line}:" in rendered and "^" in rendered


def test_unknown_names_suggest_the_closest():
    with pytest.raises(ConfigError) as info:
        apply_toml(Config(), "[limits]\ntimout = 3\n", Path("/x/viwo.toml"))
    assert "did you mean 'timeout'" in info.value.hint


def test_toml_syntax_error_points_at_the_line(tmp_path):
    write(tmp_path / "viwo.toml", "[limits]\ngas = \n")
    with pytest.raises(ConfigError) as info:
        load_config()
    assert "invalid TOML" in info.value.message
    assert info.value.span.line == 2
    assert " 2 | gas = " in info.value.render()


def test_non_utf8_file(tmp_path):
    (tmp_path / "viwo.toml").write_bytes(b"[limits]\ngas = \xff\n")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config()


@settings(max_examples=60, deadline=None)
@given(
    limits=st.fixed_dictionaries({}, optional={
        "gas": st.integers(1, 10**12), "max_depth": st.integers(1, 10_000),
        "timeout": st.floats(0.001, 1e6, allow_nan=False), "max_list": st.integers(1, 10**9),
    }),
    size=st.one_of(st.none(), st.tuples(st.integers(1, 16384), st.integers(1, 16384))),
)
def test_valid_settings_round_trip(limits, size):
    lines = ["[limits]"] + [f"{k} = {v!r}" for k, v in limits.items()]
    if size:
        lines += ["[canvas]", f"width = {size[0]}", f"height = {size[1]}"]
    cfg = Config(cwd=Path("/tmp"))
    apply_toml(cfg, "\n".join(lines) + "\n", Path("/tmp/viwo.toml"))
    assert cfg.limits() == CLI_DEFAULTS.with_(**limits)
    assert cfg.canvas_size == (size or (1024, 1024))
    for key in limits:
        assert cfg.settings[f"limits.{key}"].source == "/tmp/viwo.toml"


def test_grants_reach_the_capability_manager(tmp_path):
    from viwoscript.errors import ViwoError
    from viwoscript.runtime import Runtime

    write(tmp_path / "viwo.toml", '[[grants]]\ntype = "diffusers.generate"\nparams = { max_steps = 5 }\n')
    rt = Runtime(**load_config().runtime_kwargs())
    assert rt.run('(== (get_capability "diffusers.generate") null)') is False
    assert rt.run('(== (get_capability "sys.mint") null)') is True  # only what the file grants
    with pytest.raises(ViwoError, match="steps"):
        rt.run('(std.call_method (get_capability "diffusers.generate") "textToImage" "x" {"steps" 6})')
    write(tmp_path / "viwo.toml", "grants = []\n")
    rt = Runtime(**load_config().runtime_kwargs())
    assert rt.run('(== (get_capability "diffusers.generate") null)') is True


def test_models_table_keeps_aliases_and_settings(tmp_path):
    conf = write(tmp_path / "viwo.toml", '[models]\nsd = "org/sd"\ndefault = "sd"\ncpu_offload = true\n')
    cfg = load_config(conf)
    assert cfg.models == {"sd": "org/sd", "default": "sd", "cpu_offload": True}
    assert cfg.settings["models.cpu_offload"].source == str(conf.resolve())


def test_models_table_is_validated_by_the_models_package(tmp_path):
    import importlib.util

    write(tmp_path / "viwo.toml", '[models]\nsd = "org/sd"\ndevice = "tpu"\n')
    if importlib.util.find_spec("viwoscript.models") is None:
        assert load_config().models["device"] == "tpu"  # nothing to validate against
        return
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        load_config()
    write(tmp_path / "viwo.toml", "[models]\nsd = 3\n")
    with pytest.raises(ConfigError, match="models.sd must be a string") as info:
        load_config()
    assert info.value.span.line == 2


def test_models_become_configured_capabilities(monkeypatch):

    import viwoscript.capabilities as caps_mod
    import viwoscript.config as config_mod

    seen = []
    monkeypatch.setattr(caps_mod, "capabilities", lambda table: seen.append(table) or ["configured classes"])
    monkeypatch.setattr(config_mod, "_models_package", lambda: True)
    cfg = Config()
    assert "capabilities" not in cfg.runtime_kwargs()  # no [models]: nothing added
    cfg.set("models.sd", "org/sd", "viwo.toml")
    assert cfg.runtime_kwargs()["capabilities"] == ["configured classes"] and seen == [{"sd": "org/sd"}]

    def broken(table):
        raise ImportError("No module named 'diffusers'")

    monkeypatch.setattr(caps_mod, "capabilities", broken)
    with pytest.raises(ConfigError, match="cannot load: No module named 'diffusers'") as info:
        cfg.runtime_kwargs()
    assert "viwoscript[diffusion]" in info.value.hint


def test_out_of_range_limit_is_a_config_error(tmp_path):
    from viwoscript.config import ConfigError, load_config

    f = tmp_path / "viwo.toml"
    f.write_text("[limits]\nmax_depth = 100000000\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="max_depth"):
        load_config(f).limits()


def test_roots_that_do_not_exist_are_a_config_error(tmp_path):
    from viwoscript.config import ConfigError, load_config

    f = tmp_path / "viwo.toml"
    f.write_text('[paths]\nroots = [".", "no-such-folder"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="no-such-folder"):
        load_config(f)
