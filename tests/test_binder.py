"""Binder as students meet it: no JupyterLab news prompt, the datasets prefetched; and
binder/postBuild itself, run in a fresh environment (as far as a machine without the MedMNIST
host allows)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fresh_env import checkout_copy, clean_env, make_venv, run_python, site_packages

ROOT = Path(__file__).resolve().parent.parent
BINDER = ROOT / "binder"
NOTIFICATION = "@jupyterlab/apputils-extension:notification"


def test_overrides_turn_off_news_and_update_checks(tmp_path):
    """JupyterLab's own settings loader, given binder/overrides.json as the application settings,
    yields fetchNews "false" (never ask, never fetch) and no update check."""
    from jupyterlab.commands import get_app_dir
    from jupyterlab_server.settings_utils import get_settings

    schemas = os.path.join(get_app_dir(), "schemas")

    def defaults(app_settings: Path) -> dict:
        found, _ = get_settings(
            str(app_settings), schemas, str(tmp_path / "user"), schema_name=NOTIFICATION
        )
        return {k: v["default"] for k, v in found["schema"]["properties"].items()}

    assert defaults(tmp_path / "none")["fetchNews"] == "none"  # JupyterLab asks by default
    app_settings = tmp_path / "settings"
    app_settings.mkdir()
    (app_settings / "overrides.json").write_text((BINDER / "overrides.json").read_text())
    got = defaults(app_settings)
    assert got["fetchNews"] == "false" and got["checkForUpdates"] is False


def test_server_config_disables_news_and_update_checks():
    from jupyterlab import NeverCheckForUpdate
    from jupyterlab.labapp import LabApp
    from traitlets.config import Config

    app = LabApp(config=Config(json.loads((BINDER / "jupyter_server_config.json").read_text())))
    assert app.news_url is None
    assert app.check_for_updates_class is NeverCheckForUpdate


def test_post_build_installs_the_settings_and_prefetches_all_datasets():
    post = (BINDER / "postBuild").read_text()
    lines = [ln.strip() for ln in post.splitlines() if ln.strip() and not ln.startswith("#")]
    assert lines[0] == "set -euo pipefail"
    assert 'cp binder/overrides.json "$settings/overrides.json"' in lines
    assert any("get_app_dir()" in ln and ln.endswith('/settings"') for ln in lines)
    assert 'cp binder/jupyter_server_config.json "$config/jupyter_server_config.json"' in lines
    assert "python -m medlab download --all" in lines
    assert os.access(BINDER / "postBuild", os.X_OK)


# ---------------------------------------------------------------- postBuild, run in a fresh venv

# Test scaffolding, installed as the fresh environment's sitecustomize: MedMNIST's host is out of
# reach from the test machines, so while MEDLAB_TEST_SERVE is set, medlab's downloads are served
# from local files ({dataset: file}) by pooch's downloader protocol, each file's MD5 standing in
# for the official one. Everything else (the official URL, pooch's MD5 check, the data folder)
# is medlab's own code path. Each URL asked for is appended to MEDLAB_TEST_SERVE_LOG.
SERVE = """\
import os
import sys

if os.environ.get("MEDLAB_TEST_SERVE"):
    import importlib.abc
    import importlib.util

    def _serve(D):
        import hashlib
        import json
        import shutil

        import pooch

        by_url = {}
        for name, path in json.loads(os.environ["MEDLAB_TEST_SERVE"]).items():
            with open(path, "rb") as f:
                D.INFO[name]["MD5"] = hashlib.md5(f.read()).hexdigest()
            by_url[D.INFO[name]["url"]] = path

        def local(url, output_file, pooch_obj):
            with open(os.environ["MEDLAB_TEST_SERVE_LOG"], "a") as log:
                log.write(url + "\\n")
            shutil.copyfile(by_url[url], output_file)

        retrieve = pooch.retrieve
        pooch.retrieve = lambda url, *a, downloader=None, **kw: retrieve(
            url, *a, downloader=local, **kw
        )

    class _AfterImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name != "medlab.data":
                return None
            sys.meta_path.remove(self)
            spec = importlib.util.find_spec(name)
            run = spec.loader.exec_module

            def exec_module(module):
                run(module)
                _serve(module)

            spec.loader.exec_module = exec_module
            return spec

    sys.meta_path.insert(0, _AfterImport())
"""

CHECK = f"""\
import json
from jupyter_server.serverapp import ServerApp
from jupyterlab.labapp import LabApp
from jupyterlab_server.settings_utils import get_settings

lab = LabApp()
found, _ = get_settings(
    lab.app_settings_dir, lab.schemas_dir, lab.user_settings_dir, schema_name={NOTIFICATION!r}
)
server = ServerApp()
server.load_config_file()
print(json.dumps({{
    "app_settings_dir": lab.app_settings_dir,
    "defaults": {{k: v["default"] for k, v in found["schema"]["properties"].items()}},
    "config_dirs": server.config_file_paths,
    "config": server.config,
}}))
"""


def _stand_ins(data_dir: Path | None, names: list[str]) -> dict[str, str]:
    """A local file for each dataset: its own (same name), else one named like it, else any."""
    files = sorted(data_dir.glob("*.npz")) if data_dir is not None else []
    if not files:
        pytest.skip("the shared MedMNIST data ($MEDLAB_TEST_DATA_DIR) is not here")
    out = {}
    for name in names:
        like = [f for f in files if f.stem == name] or [f for f in files if f.stem.startswith(name)]
        out[name] = str((like or files)[0])
    return out


def _app_dir_files(host_app_dir: Path) -> dict[str, bytes]:
    settings = host_app_dir / "settings"
    return {str(p): p.read_bytes() for p in settings.rglob("*") if p.is_file()}


def test_post_build_runs_in_a_fresh_environment(tmp_path, data_dir):
    """binder/postBuild as committed, in a fresh environment with HOME in tmp_path: medlab is
    installed (editable, no dependencies), JupyterLab reads the notification defaults from where
    the settings were copied, the Jupyter server loads the copied config from ~/.jupyter, and
    `medlab download --all` puts every dataset the curriculum uses into ~/.medmnist, fetched
    from its official URL and MD5-checked by medlab (served here from the shared folder, each
    file's MD5 standing in for the official one), where medlab.load finds it."""
    from jupyterlab.commands import get_app_dir

    from medlab import data as D
    from medlab.harness.kit import curriculum_datasets

    names = curriculum_datasets()
    serve = _stand_ins(data_dir, names)
    host_app_dir = Path(get_app_dir())
    host_before = _app_dir_files(host_app_dir)

    python = make_venv(tmp_path / "venv")
    venv_bin = python.parent
    (site_packages(python) / "sitecustomize.py").write_text(SERVE)
    # a JupyterLab installed in this environment has its app folder under its prefix (the
    # borrowed one lives in the host's): schemas, static files and themes, linked
    app_dir = tmp_path / "venv" / "share" / "jupyter" / "lab"
    app_dir.mkdir(parents=True)
    for part in ("schemas", "static", "themes"):
        (app_dir / part).symlink_to(host_app_dir / part)
    jupyter = venv_bin / "jupyter"
    jupyter.write_text(
        f"#!{python}\nimport sys\nfrom jupyter_core.command import main\nsys.exit(main())\n"
    )
    jupyter.chmod(0o755)

    repo, home = checkout_copy(tmp_path / "repo"), tmp_path / "home"
    home.mkdir()
    log = tmp_path / "served.txt"
    host_bin = str(Path(sys.executable).parent)
    path = [venv_bin, *(p for p in os.environ["PATH"].split(os.pathsep) if p != host_bin)]
    env = clean_env(
        HOME=str(home),
        PATH=os.pathsep.join(map(str, path)),
        MEDLAB_TEST_SERVE=json.dumps(serve),
        MEDLAB_TEST_SERVE_LOG=str(log),
        MEDLAB_QUIET="1",
    )
    res = subprocess.run(
        ["bash", "binder/postBuild"], cwd=repo, env=env, capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]

    # JupyterLab's settings: in this environment's app folder, read by LabApp as its defaults
    env.pop("MEDLAB_TEST_SERVE")
    got = run_python(python, CHECK, tmp_path, **{k: env[k] for k in ("HOME", "PATH")})
    assert got.returncode == 0, got.stderr
    seen = json.loads(got.stdout)
    assert Path(seen["app_settings_dir"]) == app_dir.resolve() / "settings"
    assert (app_dir / "settings" / "overrides.json").read_text() == (
        BINDER / "overrides.json"
    ).read_text()
    assert seen["defaults"]["fetchNews"] == "false" and seen["defaults"]["checkForUpdates"] is False
    # the server config: in ~/.jupyter, loaded by the server as it is in binder/
    copied = home / ".jupyter" / "jupyter_server_config.json"
    want = json.loads((BINDER / "jupyter_server_config.json").read_text())
    assert json.loads(copied.read_text()) == want
    assert str(home / ".jupyter") in seen["config_dirs"]
    for section, values in want.items():
        assert {k: seen["config"].get(section, {}).get(k) for k in values} == values, section

    # the data: every curriculum dataset, from its official URL, in ~/.medmnist
    assert sorted(log.read_text().split()) == sorted(D.INFO[n]["url"] for n in names)
    for name in names:
        got_file = home / ".medmnist" / f"{name}.npz"
        assert got_file.read_bytes() == Path(serve[name]).read_bytes(), name
        assert f"{name}: {got_file} (md5 {D.file_md5(got_file)})" in res.stdout
    if "breastmnist" in names and Path(serve["breastmnist"]).stem == "breastmnist":
        load = (
            "import medlab; d = medlab.load('breastmnist', download=False); "
            "print(len(d.test), d.provenance['file'])"
        )
        loaded = run_python(python, load, tmp_path, HOME=str(home))  # warns: unofficial copy
        assert loaded.returncode == 0, loaded.stderr
        file = (home / ".medmnist" / "breastmnist.npz").resolve()
        assert loaded.stdout.split() == ["156", str(file)]

    assert _app_dir_files(host_app_dir) == host_before, "postBuild wrote into this environment"
