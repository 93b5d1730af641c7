"""What the operator is told when the model cannot be had: one line naming engine.model, never a download in tests."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from engine.config import DEFAULT_MODEL, EngineSettings
from engine.model_source import describe_failure, is_local, quiet_optional_backends


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
