"""The parameters text embedded in every PNG."""

from PIL import Image

from engine.pnginfo import encode_png, format_parameters, model_label, read_parameters, read_text
from engine.types import SAMPLERS, GenerationParams

PARAMS = GenerationParams(width=512, height=768, steps=25, guidance=7.5, sampler="dpmpp_2m_karras")


def test_one_image_in_a1111_layout() -> None:
    text = format_parameters("a lighthouse", "blurry, dark", PARAMS, [7], "sd15")
    assert text == (
        "a lighthouse\n"
        "Negative prompt: blurry, dark\n"
        "Steps: 25, Sampler: DPM++ 2M Karras, CFG scale: 7.5, Seed: 7, Size: 512x768, Model: sd15"
    )


def test_no_negative_prompt_line_without_one() -> None:
    text = format_parameters("a lighthouse", "", PARAMS, [7], "sd15")
    assert "Negative prompt" not in text
    assert text.splitlines()[1].startswith("Steps: 25, ")


def test_a_grid_lists_every_seed() -> None:
    text = format_parameters("a lighthouse", "", PARAMS, [7, 8, 9, 10], "sd15")
    assert text.endswith('Seed: 7, Size: 512x768, Model: sd15, Seeds: "7, 8, 9, 10"')


def test_every_sampler_has_a_label() -> None:
    labels = {
        format_parameters("p", "", GenerationParams(sampler=name), [1], "m").split("Sampler: ")[1].split(",")[0]
        for name in SAMPLERS
    }
    assert labels == {"DPM++ 2M", "DPM++ 2M Karras", "Euler", "Euler a", "DDIM", "PNDM"}


def test_encoding_is_deterministic_and_round_trips() -> None:
    image = Image.new("RGB", (16, 16), (200, 10, 30))
    text = format_parameters("a café 🌊", "", PARAMS, [1], "sd15")
    first, second = encode_png(image, text), encode_png(image.copy(), text)
    assert first == second
    assert read_parameters(first) == text


def test_latin1_text_goes_in_a_plain_text_chunk() -> None:
    png = encode_png(Image.new("RGB", (4, 4)), "a lighthouse")
    assert b"tEXtparameters\x00a lighthouse" in png
    assert read_text(png) == {"parameters": "a lighthouse"}


def test_model_label_hides_local_paths(tmp_path) -> None:
    folder = tmp_path / "models" / "my-sd15"
    folder.mkdir(parents=True)
    assert model_label(str(folder)) == "my-sd15"
    assert model_label("runwayml/stable-diffusion-v1-5") == "runwayml/stable-diffusion-v1-5"


def test_img2img_records_its_strength_and_a_chosen_model_its_name() -> None:
    img2img = GenerationParams(width=512, height=512, steps=25, sampler="euler", strength=0.35, model="anime")
    text = format_parameters("a lighthouse", "", img2img, [7], "sd15")
    assert text.endswith("Seed: 7, Size: 512x512, Model: anime, Denoising strength: 0.35")
    assert "Denoising strength" not in format_parameters("a lighthouse", "", PARAMS, [7], "sd15")
