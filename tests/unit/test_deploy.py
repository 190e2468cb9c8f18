"""deploy/: the systemd unit passes systemd's own check, the Dockerfile copies what the bot needs,
and the compose file wires the bot to PostgreSQL and Redis with settings the bot accepts.
(No Docker daemon runs here: building the image is not tried.)"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def test_the_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here")
    unit = (DEPLOY / "otp-storefront.service").read_text()
    assert "ExecStart=/opt/otp-storefront/.venv/bin/python -m bot" in unit
    assert "RestartPreventExitStatus=2" in unit  # a bad setting is not restarted in a loop
    # The interpreter it names exists on a server, not here: this one stands in for it.
    local = unit.replace("/opt/otp-storefront/.venv/bin/python", sys.executable)
    local = local.replace("User=shop", "User=root").replace("Group=shop", "Group=root")
    path = tmp_path / "otp-storefront.service"
    path.write_text(local)
    result = subprocess.run(  # noqa: S603 - our own unit file, a fixed tool
        [analyze, "verify", str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_the_dockerfile_copies_every_package_and_runs_the_bot() -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = re.findall(r"^COPY (\S+)", dockerfile, flags=re.M)
    for source in copied:
        assert (ROOT / source).exists(), source
    for package in ("bot", "handlers", "services", "db", "locales"):
        assert package in copied, package
    assert 'CMD ["python", "-m", "bot"]' in dockerfile
    assert re.search(r"^USER shop$", dockerfile, flags=re.M)  # not root


def test_compose_wires_the_bot_to_postgresql_and_redis() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert set(services) == {"bot", "postgres", "redis"}
    bot = services["bot"]
    assert bot["build"] == {"context": "..", "dockerfile": "deploy/Dockerfile"}
    assert set(bot["depends_on"]) == {"postgres", "redis"}
    for name in ("postgres", "redis"):
        assert services[name]["healthcheck"]["test"]
        assert bot["depends_on"][name]["condition"] == "service_healthy"
    env = {
        k: v.replace("${POSTGRES_PASSWORD:-change-me}", "secret")
        for k, v in bot["environment"].items()
    }
    for key in env:
        assert key.lower() in Settings.model_fields, key
    settings = Settings(
        _env_file=None,
        bot_token="123456:ABCDEFGHIJKLMNOPQRSTUVWXYZ",
        **{k.lower(): v for k, v in env.items()},
    )
    assert settings.database_url.startswith("postgresql+asyncpg://shop:secret@postgres:5432/")
    assert settings.redis_url == "redis://redis:6379/0"
    assert services["postgres"]["environment"]["POSTGRES_DB"] == "shop"
