"""What the operator is told when the model cannot be had: one line naming engine.model, never a download in tests."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants

from engine.config import DEFAULT_MODEL, EngineSettings
from engine.model_source import (
    PROXY_VARIABLES,
    describe_failure,
    hub_reachable,
    is_local,
    loading_settings,
    quiet_optional_backends,
)


def load_failure(settings: EngineSettings) -> str:
    """Load through the real loading code and return the operator's line for the failure."""
    from engine.pipeline import Pipeline

    with pytest.raises(Exception) as failure:
        Pipeline.load(settings)
    return describe_failure(settings, failure.value)


def test_a_hub_model_not_downloaded_with_downloads_off_says_so_and_offers_the_ways_out(tmp_path: Path) -> None:
    settings = EngineSettings(model=DEFAULT_MODEL, local_files_only=True, cache_dir=tmp_path, device="cpu")
    line = load_failure(settings)
    assert line.startswith(f"engine.model: {DEFAULT_MODEL} is not downloaded yet and downloads are off")
    assert "engine.local_files_only is true" in line
    assert "dreamqueue make-tiny-model" in line and "engine.simulated: true" in line
    assert "\n" not in line


def test_offline_by_environment_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    line = describe_failure(EngineSettings(model=DEFAULT_MODEL, cache_dir=tmp_path), OSError("not cached"))
    assert "downloads are off (HF_HUB_OFFLINE is set)" in line


def test_a_missing_folder_is_named(tmp_path: Path) -> None:
    line = load_failure(EngineSettings(model=str(tmp_path / "nowhere"), device="cpu"))
    assert line == (
        f"engine.model: no model folder at {tmp_path / 'nowhere'}; run `dreamqueue make-tiny-model models/tiny` "
        "and set engine.model: models/tiny for a tiny offline model, or set engine.simulated: true to serve "
        "drawn images without a model"
    )


def test_a_folder_that_is_not_a_model_is_named(tmp_path: Path) -> None:
    line = load_failure(EngineSettings(model=str(tmp_path), device="cpu"))
    assert line.startswith(f"engine.model: {tmp_path} is not a diffusers model folder (") and "\n" not in line


@pytest.mark.parametrize(
    ("model", "local"),
    [("stable-diffusion-v1-5/stable-diffusion-v1-5", False), ("models/tiny/", True), ("./tiny", True),
     ("/srv/models/sd15", True), ("~/sd", True), ("a/b/c", True)],
)
def test_folders_and_hub_ids_are_told_apart(model: str, local: bool) -> None:
    assert is_local(model) is local


def test_diffusers_hub_notice_is_left_to_the_one_line_but_its_other_warnings_pass() -> None:
    quiet_optional_backends()
    logger = logging.getLogger("diffusers.pipelines.pipeline_utils")
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        logger.warning("Couldn't connect to the Hub: no network.\nWill try to load from local cache.")
        logger.warning("another warning")
    finally:
        logger.removeHandler(handler)
    assert seen == ["another warning"]


@pytest.fixture
def hub_at(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A loopback port as the hub's address (``HF_ENDPOINT``), no proxy; nothing listens until the test says so."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{sock.getsockname()[1]}")
        yield sock


def test_an_unreachable_hub_is_found_at_once_and_the_start_ends_in_its_one_line(
    tmp_path: Path, hub_at: socket.socket, caplog: pytest.LogCaptureFixture, recwarn: pytest.WarningsRecorder
) -> None:
    quiet_optional_backends()  # as the engine process does first
    settings = EngineSettings(model=DEFAULT_MODEL, cache_dir=tmp_path, device="cpu")
    loading = loading_settings(settings)
    assert loading.local_files_only  # from the cache only: not half a minute of the hub client's retries
    from engine.pipeline import Pipeline

    with pytest.raises(Exception) as failure:
        Pipeline.load(loading)
    line = describe_failure(settings, failure.value)
    assert line.startswith(f"engine.model: {DEFAULT_MODEL} could not be downloaded: the Hugging Face hub is not "
                           "reachable; run `dreamqueue make-tiny-model")  # fmt: skip
    assert not [record for record in caplog.records if "Retrying" in record.getMessage()]
    assert not [warning for warning in recwarn if "local_dir_use_symlinks" in str(warning.message)]


def test_a_hub_that_answers_or_a_proxy_leaves_loading_to_the_hub_client(
    hub_at: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = EngineSettings(model=DEFAULT_MODEL)
    assert not hub_reachable()
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")  # only the hub's client goes through a proxy
    assert hub_reachable() and loading_settings(settings) is settings
    monkeypatch.delenv("HTTPS_PROXY")
    hub_at.listen()
    assert hub_reachable() and loading_settings(settings) is settings
