"""The engine's models: which diffusers pipeline a model folder needs, and swapping between configured models.

Runs inside the engine process only (it imports torch). ``engine.model`` is the
default model; ``engine.models`` names others a request may choose
(``GenerationParams.model``). One model is loaded at a time: a batch for
another model frees the loaded one, then loads its own.
"""

from __future__ import annotations

import gc
import logging
import time
from typing import TYPE_CHECKING, Any

import torch
from diffusers import DiffusionPipeline, StableDiffusionPipeline, StableDiffusionXLPipeline

from engine.config import EngineSettings, is_local

if TYPE_CHECKING:
    from engine.pipeline import Pipeline

log = logging.getLogger(__name__)

PIPELINES: dict[str, tuple[type[DiffusionPipeline], dict[str, Any]]] = {
    # The safety checker is loaded apart (engine.safety), never inside the pipeline.
    "StableDiffusionPipeline": (
        StableDiffusionPipeline,
        {"safety_checker": None, "feature_extractor": None, "requires_safety_checker": False},
    ),
    "StableDiffusionXLPipeline": (StableDiffusionXLPipeline, {"add_watermarker": False}),  # keep pixels as made
}
"""Each supported ``_class_name`` of a model's ``model_index.json``: the pipeline class and its loading options."""


class ModelError(ValueError):
    """A configured model is of a kind the engine cannot run; the message names its config key."""


def load_pipe(
    source: str, settings: EngineSettings, dtype: torch.dtype, key: str = "engine.model"
) -> DiffusionPipeline:
    """Load ``source`` (a folder or hub id) with the pipeline class its ``model_index.json`` names.

    SD 1.x and 2.x are ``StableDiffusionPipeline``, SDXL ``StableDiffusionXLPipeline``;
    any other kind raises :class:`ModelError` naming ``key``.
    """
    options = {"local_files_only": settings.local_files_only, "cache_dir": settings.cache_dir}
    index = DiffusionPipeline.load_config(source, **options)
    kind = index.get("_class_name", "")
    if kind not in PIPELINES:
        raise ModelError(f"{key}: {source} is a {kind or 'unknown'} model; supported: {', '.join(PIPELINES)}")
    pipeline_class, extra = PIPELINES[kind]
    return pipeline_class.from_pretrained(source, dtype=dtype, **options, **extra)


def fetch_all(settings: EngineSettings) -> None:
    """Download every model of ``engine.models`` named by a Hugging Face id, at start, so a swap only loads from
    disk (well within ``watchdog_timeout_s``); with downloads off, check each is in the cache.

    Raises :class:`ModelError` naming the model's key when one cannot be had.
    """
    for name, source in settings.models.items():
        if is_local(source):
            continue  # the settings checked the folder
        log.info("fetching model %s (%s) into %s, if it is not there yet", name, source, settings.cache_dir)
        try:
            DiffusionPipeline.download(source, cache_dir=settings.cache_dir, local_files_only=settings.local_files_only)
        except Exception as exc:
            lines = str(exc).strip().splitlines()
            raise ModelError(
                f"engine.models.{name}: could not fetch {source} ({type(exc).__name__}: {lines[0] if lines else ''})"
            ) from exc


def needs_vae_upcast(pipe: DiffusionPipeline) -> bool:
    """Whether the pipeline's VAE must decode in fp32: SDXL's VAE overflows in fp16 (its config says so)."""
    vae = pipe.vae
    return isinstance(pipe, StableDiffusionXLPipeline) and vae.dtype == torch.float16 and vae.config.force_upcast


class Models:
    """The loaded model, and the switch to another configured one when a batch asks for it."""

    def __init__(self, settings: EngineSettings, default: Pipeline) -> None:
        self.settings = settings
        self.current: Pipeline | None = default
        self.name = ""
        """The loaded model's name in ``engine.models``; empty: the default model."""

    def get(self, name: str) -> Pipeline:
        """The pipeline of model ``name`` (empty: the default), loading it in place of the loaded one if needed."""
        if self.current is not None and name == self.name:
            return self.current
        previous, self.current = self.current, None
        if previous is not None:
            batch_size = previous.batch_size
            release(previous)
        else:
            batch_size = self.settings.batch_size if isinstance(self.settings.batch_size, int) else 1
        from engine.pipeline import Pipeline

        source = self.settings.models[name] if name else self.settings.model or ""
        key = f"engine.models.{name}" if name else "engine.model"
        started = time.perf_counter()
        loaded = Pipeline.load(self.settings.model_copy(update={"model": source}), key=key)
        loaded.batch_size = batch_size  # as settled at start: a batch size measured for one model serves the others
        self.current, self.name = loaded, name
        log.info("switched to model %s in %.1f s", name or "(default)", time.perf_counter() - started)
        return loaded


def release(pipeline: Pipeline) -> None:
    """Free a pipeline's weights now, whoever still holds the :class:`Pipeline` object (it is unusable after)."""
    del pipeline.pipe
    del pipeline.start_images
    gc.collect()
    if pipeline.device.type == "cuda":
        torch.cuda.empty_cache()
