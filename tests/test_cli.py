"""The command line: its version, and `generate`'s checks before it spends any time on the engine."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from bot import cli


def run(capture: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capture.readouterr()
    return code, out, err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == "dreamqueue 0.1.0"


@pytest.mark.parametrize(
    ("output", "says"),
    [("missing/dir/x.png", "the folder missing/dir does not exist"), ("x.gif", "must end in .png, .jpg or .jpeg")],
)
def test_an_output_that_cannot_be_written_fails_before_generating(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, output: str, says: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "generate", "a lighthouse", "--model", str(tmp_path / "no-model"), "-o", output)
    assert code == 2 and says in err and "engine" not in err  # refused before the engine was started


@pytest.mark.parametrize(
    ("option", "prompts", "category"),
    [
        ("prompt", ["a nude portrait", "--negative", "blurry"], "sexual"),
        ("--negative", ["a dog", "--negative", "text me on 07700 900123"], "personal_info"),
    ],
)
def test_a_prompt_the_filter_blocks_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, option: str, prompts: list[str], category: str
) -> None:
    code, _, err = run(capsys, "generate", *prompts, "--model", str(tmp_path), "-o", str(tmp_path / "x.png"))
    assert code == 2 and f"the prompt filter blocks this {option} ({category}" in err and "--no-filter" in err
    assert not (tmp_path / "x.png").exists()


def test_check_prompt_prints_the_negative_prompts_verdict_too(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check-prompt", "a dog", "a cat", "--negative", "nude, blurry, call 020 7946 0958")
    assert code == 0
    first, second = map(json.loads, out.splitlines())
    assert (first["prompt"], first["allowed"]) == ("a dog", True)
    negative = first["negative"]
    assert (negative["text"], negative["allowed"], negative["category"]) == (
        "nude, blurry, call 020 7946 0958", False, "personal_info",
    )  # fmt: skip
    assert negative["span"] == [19, 32]  # the phone number, not "nude": sexual words may be named to keep them out
    assert second["negative"] == negative


def test_check_prompt_reads_json_lines_with_a_negative(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [
        json.dumps({"prompt": "a castle", "negative": "white power rally"}),
        "{{hentai}} style",  # starts with a brace, but is a prompt
        json.dumps({"prompt": "a castle"}),
        json.dumps({"prompt": 7}),
    ]
    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(lines) + "\n"))
    code, out, _ = run(capsys, "check-prompt", "-")
    assert code == 0
    castle, braces, plain, bad = map(json.loads, out.splitlines())
    assert castle["allowed"] and (castle["negative"]["category"], castle["negative"]["allowed"]) == ("hate", False)
    assert (braces["prompt"], braces["category"]) == ("{{hentai}} style", "sexual")
    assert "negative" not in plain
    assert bad == {"line": 4, "error": '"prompt" must be a string in a JSON line'}


def test_no_filter_says_so_and_jpeg_output_is_a_jpeg_with_the_parameters(
    capfd: pytest.CaptureFixture[str], tmp_path: Path, tiny_model: Path
) -> None:
    """Captured at the file descriptors, so the engine process's own output is read too."""
    out = tmp_path / "grid.jpg"
    args = ["a nude portrait", "-n", "1", "--steps", "2", "--size", "64x64", "--seed", "3", "--no-filter"]
    code, stdout, err = run(capfd, "generate", *args, "--model", str(tiny_model), "-o", str(out))
    assert code == 0, err
    assert "--no-filter: the prompt filter was NOT run" in err
    assert "torchvision" not in err and "torch_dtype" not in err and "Warning" not in err, err
    with Image.open(io.BytesIO(out.read_bytes())) as image:
        assert image.format == "JPEG" and b"Seed: 3" in image.info["comment"]
    assert f"wrote {out}" in stdout


def test_make_tiny_model_writes_sdxl_on_request(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, _ = run(capsys, "make-tiny-model", str(tmp_path / "xl"), "--arch", "sdxl")
    assert code == 0 and "tiny random SDXL pipeline" in out
    index = json.loads((tmp_path / "xl" / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionXLPipeline" and index["text_encoder_2"][1] == "CLIPTextModelWithProjection"
