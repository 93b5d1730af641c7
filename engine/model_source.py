"""Where the engine's model comes from, and what to tell the operator when it cannot be had.

``engine.model`` is a local diffusers folder or a Hugging Face id. A hub model
is downloaded on the first start (with a progress bar) into ``engine.cache_dir``,
unless the operator forbids downloads (``engine.local_files_only``, or
``HF_HUB_OFFLINE=1``). A hub that does not answer is found in seconds, and the
model is then loaded from the local cache at once, rather than after the hub's
own retries. Every failure to load becomes one line that names
``engine.model`` and says what to do.
"""

from __future__ import annotations

import logging
import os
import socket
import urllib.parse
import warnings
from pathlib import Path

from engine.config import EngineSettings, is_local

log = logging.getLogger(__name__)

OFFLINE_HELP = (
    "run `dreamqueue make-tiny-model models/tiny` and set engine.model: models/tiny for a tiny offline model, "
    "or set engine.simulated: true to serve drawn images without a model"
)


def downloads_allowed(settings: EngineSettings) -> bool:
    """Whether loading may reach the Hugging Face hub."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    return not settings.local_files_only and not offline


HUB_PROBE_S = 5.0
"""How long the hub has to accept a connection before the model is loaded from the local cache only."""
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def hub_reachable(timeout: float = HUB_PROBE_S) -> bool:
    """Whether the Hugging Face hub (``HF_ENDPOINT``) accepts a connection; assumed so behind a proxy, which
    only the hub's own client knows how to go through."""
    from huggingface_hub import constants

    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return True
    url = urllib.parse.urlsplit(constants.ENDPOINT)
    try:
        with socket.create_connection((url.hostname, url.port or (443 if url.scheme == "https" else 80)), timeout):
            return True
    except OSError:  # no network, no name resolution, refused, or no answer in time
        return False


def loading_settings(settings: EngineSettings) -> EngineSettings:
    """The settings to load the model with: from the local cache only when it would come from the hub but the
    hub does not answer (the hub's client would retry for half a minute, logging each try, before giving up)."""
    if is_local(settings.model or "") or not downloads_allowed(settings) or hub_reachable():
        return settings
    log.warning("the Hugging Face hub is not reachable: loading %s from the local cache only", settings.model)
    return settings.model_copy(update={"local_files_only": True})


def announce(settings: EngineSettings) -> None:
    """Log where the model is loaded from, so a long first download is expected, not a hang."""
    model = settings.model or ""
    if is_local(model):
        log.info("loading the model from %s", model)
    elif downloads_allowed(settings):
        cache = settings.cache_dir or "the Hugging Face cache"
        log.info("loading %s from %s (downloading it first if it is not there: several GB, once)", model, cache)
    else:
        log.info("loading %s from the local cache (downloads are off)", model)


def describe_failure(settings: EngineSettings, exc: BaseException) -> str:
    """One line for the operator: what is wrong with ``engine.model`` and what to do about it."""
    model = settings.model or ""
    if is_local(model) and not Path(model).expanduser().is_dir():
        return f"engine.model: no model folder at {model}; {OFFLINE_HELP}"
    if is_local(model):
        return f"engine.model: {model} is not a diffusers model folder ({_first_line(exc)})"
    if not downloads_allowed(settings):
        why = "engine.local_files_only is true" if settings.local_files_only else "HF_HUB_OFFLINE is set"
        return (
            f"engine.model: {model} is not downloaded yet and downloads are off ({why}); "
            f"allow them and start once online, or {OFFLINE_HELP}"
        )
    if _is_offline(exc):
        return f"engine.model: {model} could not be downloaded: the Hugging Face hub is not reachable; {OFFLINE_HELP}"
    return f"engine.model: could not load {model}: {_first_line(exc)}"


def _is_offline(exc: BaseException) -> bool:
    """Whether ``exc`` (or what caused it) says the hub could not be reached."""
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, LocalEntryNotFoundError | OfflineModeIsEnabled | ConnectionError | TimeoutError):
            return True
        if "not fully cached locally" in str(seen) or "couldn't connect" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


class _Drop(logging.Filter):
    """Drops a library's log records that contain ``text``."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def filter(self, record: logging.LogRecord) -> bool:
        return self.text not in record.getMessage()


def quiet_optional_backends() -> None:
    """Silence notices that would otherwise print at engine starts (and at each SDXL img2img batch).

    transformers says an image processor falls back to its PIL version without
    torchvision: that version is the one the engine wants. diffusers says it
    "couldn't connect to the Hub" and will try the local cache: the engine then
    either loads the cached model or ends in :func:`describe_failure`'s one line,
    which says the same thing with what to do about it.
    """
    logging.getLogger("transformers.utils.import_utils").addFilter(_Drop("requires torchvision (not installed)"))
    logging.getLogger("diffusers.pipelines.pipeline_utils").addFilter(_Drop("Couldn't connect to the Hub"))
    # SDXL's image-to-image pipeline casts its VAE to fp32 and back around each encode, as it must; diffusers
    # warns of the cast every time, with nothing for the operator to do.
    logging.getLogger("diffusers.models.modeling_utils").addFilter(_Drop("should be kept in float32"))
    # diffusers still passes huggingface_hub an argument it has stopped using, and the hub warns about it.
    warnings.filterwarnings("ignore", "The `local_dir_use_symlinks` argument is deprecated", UserWarning)
