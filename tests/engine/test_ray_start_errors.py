"""Bad input for the Ray engine pool fails the start with the key to fix: Ray missing, a cluster that does not
answer, ``min_engines`` above ``max_engines``; and the bot imports and starts its local engine without Ray."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from importlib.machinery import ModuleSpec

import pytest

from bot.settings import ConfigError, parse_settings
from engine.client import EngineStartError
from engine.config import EngineSettings, RaySettings


def test_min_engines_above_max_engines_names_the_key() -> None:
    with pytest.raises(ConfigError, match=r"engine\.pool: Value error, min_engines \(3\) must not exceed "
                                          r"max_engines \(2\)"):
        parse_settings({"engine": {"backend": "ray", "pool": {"min_engines": 3, "max_engines": 2}}}, env={})


def test_several_engines_need_the_ray_backend() -> None:
    with pytest.raises(ConfigError, match=r"engine: Value error, pool\.max_engines \(2\) above 1 needs backend: ray"):
        parse_settings({"engine": {"pool": {"max_engines": 2}}}, env={})


@pytest.mark.parametrize("address", ["nowhere", "ray://", "http://head:6379"])
def test_a_malformed_ray_address_names_the_key(address: str) -> None:
    with pytest.raises(ConfigError, match=r"engine\.ray\.address: Value error, must be auto, local, host:port"):
        parse_settings({"engine": {"ray": {"address": address}}}, env={})


def test_the_ray_backend_without_ray_installed_names_the_key(monkeypatch: pytest.MonkeyPatch) -> None:
    find_spec = importlib.util.find_spec

    def without_ray(name: str, package: str | None = None) -> ModuleSpec | None:
        return None if name == "ray" else find_spec(name, package)

    monkeypatch.setattr(importlib.util, "find_spec", without_ray)
    with pytest.raises(ConfigError, match=r"engine\.backend: Value error, ray needs the Ray package, which is not "
                                          r"installed: pip install 'dreamqueue\[cluster\]'"):
        parse_settings({"engine": {"backend": "ray"}}, env={})


def test_the_bot_imports_and_runs_its_local_engine_without_ray() -> None:
    code = (
        "import sys\n"
        "sys.modules['ray'] = None  # importing ray now fails, as where it is not installed\n"
        "import asyncio, bot.app, bot.scheduler.service, engine.pool\n"
        "from bot.settings import parse_settings\n"
        "settings = parse_settings({'engine': {'simulated': True}}, env={})\n"
        "engine = bot.app.make_engine(settings)\n"
        "asyncio.run(engine.start())\n"
        "print(type(engine).__name__, engine.health().ready)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["SimulatedEngine", "True"]


async def test_an_unreachable_cluster_fails_the_start_within_the_timeout_naming_the_key() -> None:
    pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[cluster]'): nothing to connect with")
    from engine.ray_pool import RayPool

    settings = EngineSettings(simulated=True, backend="ray",
                              ray=RaySettings(address="ray://127.0.0.1:9", start_timeout_s=2.0))
    with pytest.raises(EngineStartError, match=r"engine\.ray\.address: .*'ray://127\.0\.0\.1:9'"):
        await RayPool(settings).start()
