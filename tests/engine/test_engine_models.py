"""Several models and SDXL: the pipeline class from model_index.json, swapping models in one engine, settings."""

from __future__ import annotations

import io
import json
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from bot.settings import ConfigError, parse_settings
from engine.config import EngineSettings
from engine.models import ModelError, fetch_all
from engine.pipeline import ImageSpec, Pipeline
from engine.pnginfo import encode_png, read_parameters
from engine.protocol import BatchDone, BatchFailed, EngineFaults, RunBatch
from engine.types import GenerationParams, JobRequest, RequestError
from engine.worker import Server
from tests.engine.test_engine_pipeline import assert_close

PARAMS = GenerationParams(width=64, height=64, steps=3, sampler="euler")
START = Image.linear_gradient("L").resize((64, 64)).convert("RGB")


@pytest.fixture(scope="module")
def sdxl(tiny_sdxl: Path) -> Pipeline:
    return Pipeline.load(EngineSettings(model=str(tiny_sdxl), device="cpu"))


def test_an_sdxl_folder_loads_as_sdxl_and_generates_the_same_alone_or_batched(sdxl: Pipeline) -> None:
    assert type(sdxl.pipe).__name__ == "StableDiffusionXLPipeline"
    specs = [ImageSpec("a red lighthouse", "", 11), ImageSpec("a boat", "fog", 22)]
    batch = sdxl.render(PARAMS, specs)
    assert_close(batch, [sdxl.render(PARAMS, [spec])[0] for spec in specs])
    assert batch[0] != batch[1] and Image.open(io.BytesIO(batch[0])).size == (64, 64)


def test_sdxl_img2img_shares_the_weights_and_keeps_seeds(sdxl: Pipeline) -> None:
    params = GenerationParams(width=64, height=64, steps=4, sampler="euler", strength=0.5)
    specs = [ImageSpec("a red lighthouse", "", 11, START), ImageSpec("a boat", "", 22, START)]
    batch = sdxl.render(params, specs)
    assert type(sdxl.start_images._pipe).__name__ == "StableDiffusionXLImg2ImgPipeline"
    assert sdxl.start_images._pipe.unet is sdxl.pipe.unet
    assert_close(batch, [sdxl.render(params, [spec])[0] for spec in specs])
    assert "Denoising strength: 0.5" in (read_parameters(batch[0]) or "")


def test_an_unsupported_pipeline_class_names_the_key(tiny_model: Path, tmp_path: Path) -> None:
    index = json.loads((tiny_model / "model_index.json").read_text())
    (tmp_path / "model_index.json").write_text(json.dumps(index | {"_class_name": "FluxPipeline"}))
    with pytest.raises(ModelError, match=r"engine\.models\.flux: .* is a FluxPipeline model; supported: "):
        Pipeline.load(EngineSettings(model=str(tmp_path), device="cpu"), key="engine.models.flux")


def serve_batches(server: Server, *jobs: JobRequest) -> list[object]:
    return [server.run_batch(RunBatch(number, (job,))) for number, job in enumerate(jobs, 1)]


def test_the_engine_swaps_models_one_at_a_time(tiny_model: Path, tiny_sdxl: Path) -> None:
    settings = EngineSettings(model=str(tiny_model), device="cpu", models={"xl": str(tiny_sdxl)})
    default = Pipeline.load(settings)
    default.batch_size = 3
    _, theirs = multiprocessing.Pipe()
    with ThreadPoolExecutor(2) as encoder:
        server = Server(theirs, default, settings, EngineFaults(), encoder)
        start = encode_png(START, "")
        first, xl, xl_img2img, back = serve_batches(
            server,
            JobRequest("a", "a cat", (1,), PARAMS),
            JobRequest("b", "a cat", (1,), GenerationParams(64, 64, 3, 7.0, "euler", model="xl")),
            JobRequest("c", "a cat", (1,), GenerationParams(64, 64, 4, 7.0, "euler", 0.5, "xl"), init_image=start),
            JobRequest("d", "a cat", (1,), PARAMS),
        )
    assert all(isinstance(answer, BatchDone) for answer in (first, xl, xl_img2img, back))
    assert not hasattr(default, "pipe")  # the default's weights were let go before the other model loaded
    assert type(server.pipeline.pipe).__name__ == "StableDiffusionPipeline" and server.pipeline.batch_size == 3
    pngs = [answer.images[0][0].png for answer in (first, xl, xl_img2img, back)]  # type: ignore[attr-defined]
    assert pngs[0] == pngs[3]  # the default model reloaded makes the same image
    assert pngs[1] != pngs[0]
    assert (read_parameters(pngs[1]) or "").endswith("Model: xl")
    assert (read_parameters(pngs[0]) or "").endswith(f"Model: {tiny_model.name}")


def test_a_model_that_cannot_load_fails_its_batch_with_a_member_safe_reason(tiny_model: Path, tmp_path: Path) -> None:
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    settings = EngineSettings(model=str(tiny_model), device="cpu", models={"broken": str(tmp_path)})
    _, theirs = multiprocessing.Pipe()
    with ThreadPoolExecutor(1) as encoder:
        server = Server(theirs, Pipeline.load(settings), settings, EngineFaults(), encoder)
        broken, default = serve_batches(
            server,
            JobRequest("a", "a cat", (1,), GenerationParams(64, 64, 3, 7.0, "euler", model="broken")),
            JobRequest("b", "a cat", (1,), PARAMS),
        )
    assert isinstance(broken, BatchFailed) and broken.reason == "The model broken could not be loaded."
    assert isinstance(default, BatchDone)


def test_model_settings_become_limits_and_bad_entries_fail_naming_the_key(tiny_model: Path, tmp_path: Path) -> None:
    engine = parse_settings({"engine": {"models": {"anime": str(tiny_model), "xl": "owner/sdxl"}}}, env={}).engine
    assert engine.limits.models == ("anime", "xl")
    JobRequest("a", "a cat", (1,), GenerationParams(model="xl")).validate(engine.limits)
    with pytest.raises(RequestError, match=r"model: must be one of the configured models \(anime, xl\)"):
        JobRequest("a", "a cat", (1,), GenerationParams(model="other")).validate(engine.limits)
    for models, problem in (
        ({"anime": str(tmp_path / "missing")}, "anime: no diffusers model folder"),
        ({"Big Model": "owner/name"}, "'Big Model': a model's name is"),
        ({"anime": "not-a-hub-id"}, "anime: 'not-a-hub-id' is neither a model folder nor a Hugging Face id"),
    ):
        with pytest.raises(ConfigError, match=rf"engine\.models: .*{problem}"):
            parse_settings({"engine": {"models": models}}, env={})


def test_upscale_and_tiling_settings() -> None:
    limits = parse_settings({"engine": {"max_width": 768, "max_height": 768}}, env={}).engine.limits
    start = encode_png(Image.new("RGB", (1536, 1536)), "")
    upscale = JobRequest("a", "a cat", (1,), GenerationParams(1536, 1536, strength=0.3), init_image=start)
    upscale.validate(limits)  # a 2x upscale of the largest size is allowed (max_upscale_side: 2048)
    with pytest.raises(RequestError, match="width: must be between 64 and 768"):
        JobRequest("a", "a cat", (1,), GenerationParams(1536, 1536)).validate(limits)  # from noise it is not
    with pytest.raises(RequestError, match=r"init_image: must be a 1024x1024 PNG, got 1536x1536"):
        JobRequest("a", "a cat", (1,), GenerationParams(1024, 1024, strength=0.3), init_image=start).validate(limits)
    with pytest.raises(RequestError, match=r"init_image: must be a 64x64 PNG, got not a PNG"):
        JobRequest("a", "a cat", (1,), GenerationParams(64, 64), init_image=b"GIF89a").validate(limits)
    for bad, problem in (
        ({"vae_tiling_above": 100}, "vae_tiling_above"),
        ({"max_upscale_side": 1500}, "multiple of 8"),
    ):
        with pytest.raises(ConfigError, match=problem):
            parse_settings({"engine": bad}, env={})


def test_a_hub_model_that_cannot_be_had_fails_the_start_naming_its_key(tmp_path: Path) -> None:
    settings = EngineSettings(models={"xl": "owner/not-fetched"}, local_files_only=True, cache_dir=tmp_path)
    with pytest.raises(ModelError, match=r"^engine\.models\.xl: could not fetch owner/not-fetched \("):
        fetch_all(settings)
