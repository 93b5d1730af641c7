"""The image safety check on a tiny random classifier, saved and loaded through the real loading code."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from PIL import Image

from bot.settings import ConfigError, parse_settings
from engine.config import EngineSettings
from engine.pipeline import Pipeline
from engine.protocol import BatchDone, EngineFaults, RunBatch
from engine.safety import SafetyCheck, SafetyCheckError, concept_margins, score_from_margin
from engine.tiny import FLAGGED, write_tiny_model_with_checker, write_safety_checker
from engine.types import GenerationParams, JobRequest
from engine.worker import Server

CPU = torch.device("cpu")
PARAMS = GenerationParams(width=64, height=64, steps=2, guidance=7.0, sampler="euler")
IMAGES = [Image.new("RGB", (64, 64), (200, 30, 30)), Image.new("RGB", (96, 64), (10, 10, 10))]


def load(model: Path | str, checker: str) -> SafetyCheck | None:
    return SafetyCheck.load(EngineSettings(model=str(model), safety_checker=checker, device="cpu"), CPU, torch.float32)


@pytest.fixture(scope="module")
def flagged_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_model_with_checker(tmp_path_factory.mktemp("flagged-model"), FLAGGED)


def test_a_classifier_folder_checks_a_batch_with_one_verdict_per_image(tmp_path: Path, tiny_model: Path) -> None:
    folder = write_safety_checker(tmp_path / "checker")
    check = load(tiny_model, str(folder))
    assert check is not None and check.name == "checker"
    verdicts = check.check(IMAGES)
    assert [(verdict.label, verdict.model) for verdict in verdicts] == [("ok", "checker")] * 2
    assert all(0 <= verdict.score < 1e-6 for verdict in verdicts)  # far under every concept's threshold
    assert check.busy_seconds > 0


def test_the_models_own_checker_is_used_for_model_and_auto(flagged_model: Path, tiny_model: Path) -> None:
    for setting in ("model", "auto"):
        check = load(flagged_model, setting)
        assert check is not None and check.name == f"{flagged_model.name}/safety_checker"
        assert [(v.label, round(v.score, 6)) for v in check.check(IMAGES)] == [("flagged", 1.0)] * 2
    assert load(tiny_model, "auto") is None  # no checker shipped: images are not checked
    assert load(flagged_model, "none") is None


def test_a_model_without_a_checker_fails_naming_the_key(tiny_model: Path) -> None:
    with pytest.raises(SafetyCheckError, match=r"^engine\.safety_checker: model: no usable classifier at .*"):
        load(tiny_model, "model")


def test_bad_classifier_settings_are_refused_at_start_naming_the_key(tmp_path: Path) -> None:
    for value, problem in (("nudenet", "unknown classifier 'nudenet'"),
                           (str(tmp_path / "missing"), "no classifier folder at")):  # fmt: skip
        with pytest.raises(ConfigError, match=rf"engine\.safety_checker: .*{problem}"):
            parse_settings({"engine": {"safety_checker": value}}, env={})
    assert parse_settings({"engine": {"safety_checker": "owner/checker"}}, env={}).engine.safety_checker


def test_scores_put_the_checkers_own_line_at_one_half() -> None:
    assert score_from_margin(0.0) == 0.5
    assert round(score_from_margin(-0.01), 2) == 0.27 and round(score_from_margin(0.01), 2) == 0.73
    scores = [score_from_margin(margin) for margin in (-5.0, -0.03, -0.001, 0.001, 0.03, 5.0)]
    assert scores == sorted(scores) and scores[0] >= 0 and scores[-1] <= 1  # no overflow at the extremes


def test_a_special_care_match_lowers_every_threshold_as_diffusers_does() -> None:
    concepts = torch.tensor([[0.195, 0.10], [0.195, 0.10]])
    thresholds = torch.tensor([0.2, 0.2])
    special = torch.tensor([[0.0], [0.5]])  # only the second image matches a special-care concept
    margins = concept_margins(concepts, thresholds, special, torch.tensor([0.3]))
    assert margins.tolist() == pytest.approx([-0.005, 0.005], abs=1e-6)  # float32


def test_the_engine_checks_every_image_after_decoding_and_reports_the_time(flagged_model: Path) -> None:
    settings = EngineSettings(model=str(flagged_model), device="cpu", safety_checker="model")
    pipeline = Pipeline.load(settings)
    check = SafetyCheck.load(settings, pipeline.device, pipeline.pipe.dtype)
    pipeline.batch_size = 2  # two UNet batches: each is checked on its own
    jobs = (JobRequest("a", "a lighthouse", (1, 2), PARAMS), JobRequest("b", "a boat", (3,), PARAMS))
    _, theirs = multiprocessing.Pipe()
    with ThreadPoolExecutor(2) as encoder:
        answer = Server(theirs, pipeline, settings, EngineFaults(), encoder, check).run_batch(RunBatch(1, jobs))
    assert isinstance(answer, BatchDone) and answer.safety_seconds > 0
    images = [image for job in answer.images for image in job]
    assert [image.seed for image in images] == [1, 2, 3]
    assert all(image.safety is not None and image.safety.label == "flagged" for image in images)
