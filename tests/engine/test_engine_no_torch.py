"""The bot side of the engine must not pull torch into the bot process."""

import subprocess
import sys


def heavy_modules_after(imports: str) -> list[str]:
    """Which of torch, diffusers and transformers are loaded after ``import <imports>`` in a fresh interpreter."""
    code = (
        f"import sys, {imports}\n"
        "print(','.join(name for name in ('torch', 'diffusers', 'transformers') if name in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [name for name in out.stdout.strip().split(",") if name]


def test_bot_side_modules_import_without_torch() -> None:
    modules = ("engine.types, engine.config, engine.grid, engine.pnginfo, engine.protocol, engine.client, "
               "engine.start_images, engine.simulated")
    assert heavy_modules_after(modules) == []


def test_the_probe_does_notice_torch() -> None:
    assert heavy_modules_after("torch") == ["torch"]
