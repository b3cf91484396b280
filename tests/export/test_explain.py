"""Explanations: Grad-CAM finds each network's last spatial map by itself, looks where the
class is, and predict --explain writes one overlay per image, on any backend; a transformer's
tokens become a map; a missing extra is one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from tests.train.conftest import make_blocks
from torch import nn
from typer.testing import CliRunner

from imgclf import api
from imgclf.cli import app
from imgclf.errors import ConfigError
from imgclf.models.attribution import class_activation_maps, find_target, overlay
from imgclf.models.bundle import load_bundle

QUADRANTS = [(0, 0), (0, 4), (4, 0), (4, 4)]


class _Quadrants(nn.Module):
    """A network whose feature map k is the image seen through quadrant k (top left, top
    right, bottom left, bottom right) and whose class k is that map's mean: Grad-CAM of class
    k must light quadrant k and nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(_Masked(), nn.ReLU())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).mean(dim=(2, 3))


class _Masked(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        masks = torch.zeros(1, 4, 8, 8)
        for k, (r, c) in enumerate(QUADRANTS):
            masks[0, k, r : r + 4, c : c + 4] = 1
        self.register_buffer("masks", masks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.masks


def test_the_map_of_a_class_lights_the_region_that_makes_it(tiny_run: Path) -> None:
    model = _Quadrants()
    x = torch.rand(4, 1, 8, 8) * 255
    target = find_target(model, x)
    assert target.module is model.features[1] and not target.tokens
    maps = class_activation_maps(model, x, torch.arange(4), target)
    assert maps.shape == (4, 8, 8) and 0 <= maps.min() and maps.max() == 1
    for k, (r, c) in enumerate(QUADRANTS):
        inside = maps[k, r : r + 4, c : c + 4]
        assert inside.mean() > 0.3 and maps[k].sum() == pytest.approx(inside.sum())
    recipe = load_bundle(tiny_run)  # a recipe: its last spatial stage, found by the hooks
    blocks = torch.from_numpy(make_blocks(n_per_class=1)[0].repeat(2, 1).repeat(2, 2))
    assert find_target(recipe, blocks.permute(0, 3, 1, 2).float()).name


class _TinyViT(nn.Module):
    """Patches of 4 px as 16 tokens plus a class token, one block, the class token read."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(_Tokens(), nn.TransformerEncoderLayer(8, 2, 16))
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)[:, 0])


class _Tokens(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patch = nn.Conv2d(1, 8, 4, stride=4)
        self.cls = nn.Parameter(torch.zeros(1, 1, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch(x).flatten(2).transpose(1, 2)
        return torch.cat([self.cls.expand(len(x), -1, -1), tokens], dim=1)


def test_a_transformers_tokens_are_mapped_on_their_grid() -> None:
    torch.manual_seed(0)
    model = _TinyViT()
    x = torch.rand(3, 1, 16, 16) * 255
    target = find_target(model, x)
    assert target.tokens
    maps = class_activation_maps(model, x, torch.tensor([0, 1, 0]), target)
    assert maps.shape == (3, 16, 16) and np.isfinite(maps).all()


def test_an_overlay_is_the_image_coloured_where_the_map_is_hot() -> None:
    image = np.full((4, 4, 1), 100, np.uint8)
    cam = np.zeros((4, 4), np.float32)
    cam[0, 0] = 1.0
    drawn = overlay(image, cam)
    assert drawn.shape == (4, 4, 3) and drawn.dtype == np.uint8
    assert not np.array_equal(drawn[0, 0], drawn[3, 3])


def test_predict_explain_writes_one_overlay_per_image_on_any_backend(tiny_run, tmp_path) -> None:
    run = Path(shutil.copytree(tiny_run, tmp_path / "run"))
    folder = tmp_path / "images"
    folder.mkdir()
    (folder / "sub").mkdir()
    for i, block in enumerate(make_blocks(n_per_class=2, seed=12)[0]):
        Image.fromarray(block[..., 0]).save(folder / f"{i}.png")
    Image.fromarray(block[..., 0]).save(folder / "sub" / "0.png")  # a second 0.png
    out = tmp_path / "p.csv"
    result = CliRunner().invoke(app, ["predict", str(run), str(folder), "--output", str(out),
                                      "--explain", str(tmp_path / "cams")])  # fmt: skip
    assert result.exit_code == 0, result.output
    written = sorted(p.name for p in (tmp_path / "cams").iterdir())
    assert written == ["0-2.png", "0.png", "1.png", "2.png", "3.png", "4.png", "5.png"]
    with Image.open(tmp_path / "cams" / "1.png") as drawn:
        assert drawn.size == (16, 16)
    assert ",explanation," in out.read_text().splitlines()[0]
    api.export(run, progress=False)
    onnx = api.predict(
        run, [folder], backend="onnx", explain=tmp_path / "onnx-cams", progress=False
    )
    assert onnx.backend == "onnx" and len(onnx.explanations) == 7  # the maps come from torch


def test_a_missing_extra_is_one_line_before_any_work(tiny_run, tmp_path, monkeypatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "captum" else real(name, *a)
    )
    with pytest.raises(ConfigError, match=r"pip install 'imgclf\[explain\]'"):
        api.predict(tiny_run, [tmp_path], explain=tmp_path / "cams", progress=False)
    assert not (tmp_path / "cams").exists()


def test_the_report_shows_mistakes_and_right_answers_with_their_heatmaps(shapes: Path) -> None:
    run = api.train(shapes, config="tiny.yaml", epochs=2, quiet=True, name="cams")
    assert (run.path / "plots" / "mistakes.png").is_file()
    assert (run.path / "plots" / "looks_at.png").is_file()
    page = (run.path / "report.html").read_text(encoding="utf-8")
    assert "what the model looks at (test)" in page and "mistakes (test)" in page


def test_an_mlp_has_nothing_to_explain_its_report_stays_plain_and_predict_says_so(
    tmp_path: Path,
) -> None:
    images, labels = make_blocks(n_per_class=10)
    np.savez(tmp_path / "b.npz", x=images, y=labels)
    run = api.train(tmp_path / "b.npz", model="mlp", epochs=1, quiet=True, val_split=0.3,
                    test_split=0.3, project=tmp_path / "runs", name="mlp")  # fmt: skip
    assert (run.path / "plots" / "mistakes.png").is_file()
    assert not (run.path / "plots" / "looks_at.png").exists()
    folder = tmp_path / "images"
    folder.mkdir()
    Image.fromarray(images[0][..., 0]).save(folder / "a.png")
    args = ["predict", str(run.path), str(folder), "--output", str(tmp_path / "p.csv"),
            "--explain", str(tmp_path / "c")]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "no spatial feature map to explain" in result.output
    assert not (tmp_path / "p.csv").exists() and not (tmp_path / "c").exists()  # before work
