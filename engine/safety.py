"""The image safety check: every generated image is classified on the engine's device before it is encoded.

Runs inside the engine process only (it imports torch). The classifier is
diffusers' :class:`StableDiffusionSafetyChecker` (a CLIP ViT image tower and
the embeddings of 17 flagged concepts and 3 "special care" ones) with its CLIP
image processor, loaded from the model's own ``safety_checker/`` and
``feature_extractor/`` folders or from a classifier folder or Hugging Face id
holding both (``engine.safety_checker``). A batch of decoded images is checked
in one forward pass.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import DiffusionPipeline
from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker, cosine_distance
from PIL import Image
from transformers import CLIPImageProcessor

from engine.config import EngineSettings, is_local
from engine.pnginfo import model_label
from engine.types import SafetyVerdict

log = logging.getLogger(__name__)

SCORE_SCALE = 0.01
"""Cosine similarity that moves the score from 0.5 to about 0.73: the checker's own special-care nudge."""
SPECIAL_CARE_ADJUSTMENT = 0.01
"""What diffusers' checker adds to every concept score of an image that matches a special-care concept."""


class SafetyCheckError(Exception):
    """The configured classifier cannot be used; the message names ``engine.safety_checker``."""


@dataclass(frozen=True)
class Source:
    """Where a classifier's weights and image processor are: a folder or hub id, and their subfolders."""

    name: str
    checker_subfolder: str = ""
    processor_subfolder: str = ""


def resolve_source(settings: EngineSettings) -> Source | None:
    """The classifier ``engine.safety_checker`` names; None for no check.

    ``auto`` is the model's own checker when the model's ``model_index.json``
    lists one (a local folder, or a hub model already fetched), else none.
    """
    setting, model = settings.safety_checker, settings.model or ""
    own = Source(model, "safety_checker", "feature_extractor")
    if setting == "none":
        return None
    if setting == "model":
        return own
    if setting == "auto":
        return own if _ships_checker(settings) else None
    return Source(setting)


def _ships_checker(settings: EngineSettings) -> bool:
    """Whether the model lists a safety checker and its image processor in its ``model_index.json``."""
    model = settings.model or ""
    if is_local(model):
        return (Path(model).expanduser() / "safety_checker" / "config.json").is_file()
    try:
        index = DiffusionPipeline.load_config(model, cache_dir=settings.cache_dir, local_files_only=True)
    except OSError:
        return False
    return all(index.get(part, [None])[0] is not None for part in ("safety_checker", "feature_extractor"))


class SafetyCheck:
    """A loaded classifier that scores batches of PIL images on one device.

    ``busy_seconds`` adds up the time spent checking (preprocessing included),
    so the bench can set it against generation time.
    """

    def __init__(
        self,
        checker: StableDiffusionSafetyChecker,
        processor: CLIPImageProcessor,
        device: torch.device,
        name: str,
    ) -> None:
        self.checker = checker
        self.processor = processor
        self.device = device
        self.name = name
        """The classifier's name, written into every verdict."""
        self.busy_seconds = 0.0

    @classmethod
    def load(cls, settings: EngineSettings, device: torch.device, dtype: torch.dtype) -> SafetyCheck | None:
        """The classifier of ``settings`` on ``device``, or None when images are not to be checked.

        Raises :class:`SafetyCheckError`, naming ``engine.safety_checker``, when it cannot be loaded.
        """
        source = resolve_source(settings)
        if source is None:
            return None
        options = {"local_files_only": settings.local_files_only, "cache_dir": settings.cache_dir}
        where = f"{source.name}/{source.checker_subfolder}" if source.checker_subfolder else source.name
        log.info("loading the image safety classifier from %s", where)
        try:
            checker = StableDiffusionSafetyChecker.from_pretrained(
                source.name, subfolder=source.checker_subfolder, dtype=dtype, **options
            )
            processor = CLIPImageProcessor.from_pretrained(source.name, subfolder=source.processor_subfolder, **options)
        except (OSError, ValueError) as exc:
            lines = str(exc).strip().splitlines()
            raise SafetyCheckError(
                f"engine.safety_checker: {settings.safety_checker}: no usable classifier at {where} "
                f"({type(exc).__name__}: {lines[0] if lines else ''}); set engine.safety_checker: none to run "
                "without checking images"
            ) from exc
        checker.to(device).eval()
        name = model_label(source.name) + (f"/{source.checker_subfolder}" if source.checker_subfolder else "")
        return cls(checker, processor, device, name)

    @torch.inference_mode()
    def check(self, images: Sequence[Image.Image]) -> list[SafetyVerdict]:
        """One verdict per image, from one forward pass over all of them."""
        started = time.perf_counter()
        pixels = self.processor(list(images), return_tensors="pt").pixel_values
        checker = self.checker
        pixels = pixels.to(self.device, checker.dtype)
        embeds = checker.visual_projection(checker.vision_model(pixels)[1])
        margins = concept_margins(
            cosine_distance(embeds, checker.concept_embeds).float(),
            checker.concept_embeds_weights.float(),
            cosine_distance(embeds, checker.special_care_embeds).float(),
            checker.special_care_embeds_weights.float(),
        ).cpu()
        self.busy_seconds += time.perf_counter() - started  # .cpu() waited for the device
        return [SafetyVerdict.from_score(score_from_margin(margin), self.name) for margin in margins.tolist()]

    def warm_up(self) -> None:
        """Check one blank image, so the first member's batch does not pay for the first call."""
        self.check([Image.new("RGB", (64, 64))])
        log.info("images are checked by %s on %s", self.name, self.device)


def concept_margins(
    concept_sims: torch.Tensor,
    concept_thresholds: torch.Tensor,
    special_sims: torch.Tensor,
    special_thresholds: torch.Tensor,
) -> torch.Tensor:
    """Each image's largest concept margin: how far its nearest flagged concept is over (or under) its threshold.

    The arithmetic of diffusers' checker: a concept flags an image when its
    cosine similarity exceeds the concept's threshold, and every threshold is
    lowered by :data:`SPECIAL_CARE_ADJUSTMENT` for an image that matches a
    special-care concept. Rows are images; columns are concepts.
    """
    special = (special_sims - special_thresholds > 0).any(dim=1, keepdim=True)
    return (concept_sims - concept_thresholds + special * SPECIAL_CARE_ADJUSTMENT).amax(dim=1)


def score_from_margin(margin: float) -> float:
    """A score in [0, 1] from a concept margin: ``sigmoid(margin / SCORE_SCALE)``.

    The checker itself says only yes (some margin above 0) or no. A logistic of
    the margin keeps that line at exactly 0.5 and orders images by how near
    they came to it: CLIP cosine similarities of an image and a concept move in
    hundredths, so a margin of -0.01 scores 0.27, -0.03 scores 0.05, +0.01
    scores 0.73 and +0.03 scores 0.95. The score is a distance to the
    checker's line, not a calibrated probability.
    """
    x = margin / SCORE_SCALE
    return 1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x))  # no overflow either way
