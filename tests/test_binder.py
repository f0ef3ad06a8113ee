"""Binder as students meet it: no JupyterLab news prompt, the datasets prefetched."""

from __future__ import annotations

import json
import os
from pathlib import Path

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
