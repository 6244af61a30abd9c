import re
import tomllib

import pytest

from assay.config import AssayConfig, load_config, workspace_toml
from assay.errors import ConfigError, WorkspaceError
from assay.workspace import Workspace, resolve_root


def test_init_is_idempotent_and_writes_commented_config(tmp_path):
    ws, created = Workspace.init(tmp_path / "w")
    again, created_again = Workspace.init(tmp_path / "w")
    assert created and not created_again and again.root == ws.root
    text = ws.config_path.read_text()
    assert "# [curate]" not in text and "[curate.normalize]" in text and "# unicode_form = \"NFC\"" in text
    parsed = tomllib.loads(text)

    def live_values(table: dict) -> list:
        return [v for v in table.values() if not isinstance(v, dict)] + [x for v in table.values() if isinstance(v, dict) for x in live_values(v)]

    assert "curate" in parsed and live_values(parsed) == [], "only table headers are live"
    assert (ws.root / "workspace.key").stat().st_mode & 0o077 == 0


def _setting_lines(text: str) -> list[int]:
    return [i for i, line in enumerate(text.splitlines()) if re.match(r"^# [a-z_]+ = ", line)]


def test_rendered_defaults_roundtrip():
    # Uncommenting every default line (not the examples of unset settings) gives the defaults.
    lines = workspace_toml().splitlines()
    text = "\n".join(line[2:] if i in _setting_lines(workspace_toml()) and "unset by default" not in line else line
                     for i, line in enumerate(lines))
    assert AssayConfig.model_validate(tomllib.loads(text)) == AssayConfig()


def test_every_setting_line_can_be_uncommented_alone():
    """Each line is valid TOML and a valid setting once its `# ` is removed (bands/rows go in pairs)."""
    text = workspace_toml()
    lines = text.splitlines()
    assert len(_setting_lines(text)) > 80
    for i in _setting_lines(text):
        edited = "\n".join(line[2:] if j == i else line for j, line in enumerate(lines))
        data = tomllib.loads(edited)  # raises on a syntax error, naming the line
        if lines[i].startswith(("# bands", "# rows")):
            continue
        AssayConfig.model_validate(data)


def test_every_unset_setting_shows_an_example():
    assert "# unset by default\n" not in workspace_toml() and "=   #" not in workspace_toml()


def test_a_fresh_workspace_config_has_no_conflicts(tmp_path):
    """The generated file carries empty [train.prompt_tuning] and [train.full] tables: they change nothing."""
    ws, _ = Workspace.init(tmp_path / "w")
    assert ws.config.train.method == "lora"
    assert ws.load_config(overrides={"train.base": "model.gguf"}).train.base == "model.gguf"


def test_open_missing_workspace_says_how_to_create(tmp_path):
    with pytest.raises(WorkspaceError, match="no assay workspace") as exc:
        Workspace.open(tmp_path / "nope")
    assert "assay init" in exc.value.hint


def test_resolution_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ASSAY_HOME", raising=False)
    assert resolve_root() == tmp_path / ".assay"
    monkeypatch.setenv("ASSAY_HOME", str(tmp_path / "env"))
    assert resolve_root() == tmp_path / "env"
    assert resolve_root(tmp_path / "flag") == tmp_path / "flag"


def test_config_errors_are_reported_all_at_once(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('[curate]\nstepz = []\nseed = "x"\n[curate.normalize]\nunicode_form = "NFX"\n')
    with pytest.raises(ConfigError) as exc:
        load_config(None, bad)
    msg = str(exc.value)
    assert "3 problem(s)" in msg and "curate.stepz: unknown key" in msg
    assert "curate.seed" in msg and "curate.normalize.unicode_form" in msg


def test_invalid_toml_names_the_file(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text("[curate\n")
    with pytest.raises(ConfigError, match="broken.toml: invalid TOML"):
        load_config(None, bad)


def test_unknown_step_is_rejected(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[curate]\nsteps = ["normalize", "magic"]\n')
    with pytest.raises(ConfigError, match="magic"):
        load_config(None, cfg)


def test_readme_generated_references_are_current():
    from pathlib import Path

    from assay.readme import BLOCKS, block

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for name in BLOCKS:
        assert block(name) in readme, f"README's {name} is stale: run `make docs`"


def test_doctor_finds_staging_leftovers_in_every_place_writers_use(tmp_path):
    from assay.workspace import doctor

    ws, _ = Workspace.init(tmp_path / "w")
    places = [ws.layout.tmp, ws.layout.cache / "models", ws.layout.runs / "r1" / "checkpoints", ws.layout.derived,
              ws.layout.label, ws.root]
    for place in places:
        place.mkdir(parents=True, exist_ok=True)
        (place / ".staging-99999-1a2b3c4d-x").mkdir()
    (ws.root / ".staging-99999-0f0f0f0f-assay.toml").write_text("half")  # a half-replaced single file
    report = doctor(ws)
    assert len(report.removed) == len(places) + 1
    assert not [p for place in places for p in place.glob(".staging-*")]
