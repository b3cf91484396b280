"""Splits that imgclf carves keep each group of copies on one side: exact copies and altered ones
(re-encoded, resized, recoloured, mirrored), found on the decoded pixels, kept between runs,
and grouped only where the hash tells pictures apart; a split the source gives is kept."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from tests.audit.planted import altered, picture
from typer.testing import CliRunner

from imgclf.api.settings import make_config
from imgclf.cli import app
from imgclf.data.pipeline import copies as copies_module
from imgclf.data.pipeline.prepare import prepare_data
from imgclf.data.pipeline.splits import make_splits

ALTERATIONS = [  # what the cheap check finds: no crop
    {"scale": 0.8, "quality": 85},
    {"flip": True},
    {"shift": 12, "quality": 90},
]


@pytest.fixture(scope="module")
def flat(tmp_path_factory) -> tuple[Path, list[set[str]]]:
    """Two class folders of 28 random pictures each, no split folders; 8 pictures of each class
    have one or two altered copies beside them. Returns the root and the families."""
    root = tmp_path_factory.mktemp("flat")
    rng = np.random.default_rng(3)
    families = []
    for label, shape in (("circles", "circle"), ("squares", "square")):
        (root / label).mkdir()
        for i in range(28):
            original = picture(rng, shape)
            original.save(root / label / f"{i:02d}.png")
            family = {f"{label}/{i:02d}.png"}
            for k in range(1 + i % 2 if i < 8 else 0):
                name = f"{label}/{i:02d}_copy{k}.jpg"
                altered(original, **ALTERATIONS[(i + k) % 3]).convert("RGB").save(root / name)
                family.add(name)
            if len(family) > 1:
                families.append(family)
    return root, families


def _split_of(prepared) -> dict[str, str]:
    names = [prepared.source.item_name(i) for i in range(len(prepared.source))]
    assignment = prepared.splits.assignment(len(names))
    root = Path(prepared.source.name)
    return {
        str(Path(name).relative_to(root)): split
        for name, split in zip(names, assignment, strict=True)
    }


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_family_of_altered_copies_lands_in_one_split(flat, tmp_path: Path, seed) -> None:
    root, families = flat
    cfg = make_config(None, seed=seed, val_split=0.2, test_split=0.2, image_size=(32, 32),
                      cache_dir=tmp_path)  # fmt: skip
    prepared = prepare_data(root, cfg, progress=False)
    split_of = _split_of(prepared)
    for family in families:
        assert len({split_of[name] for name in family}) == 1, family
    members = sum(len(family) for family in families)
    assert prepared.copies.altered == members and prepared.copies.note is None
    assert f"{members} images with altered copies" in prepared.copies.sentence()
    # without the altered copies' groups (exact ones only), some family is split
    exact = make_splits(prepared.source.labels, prepared.source.classes, None, 0.2, 0.2, seed,
                        groups=copies_module.exact_groups(prepared.records))  # fmt: skip
    apart = exact.assignment(len(prepared.source))
    index = {name: i for i, name in enumerate(_split_of(prepared))}
    assert any(len({apart[index[name]] for name in family}) > 1 for family in families)


def test_the_pairs_are_kept_for_the_next_run(flat, tmp_path: Path, monkeypatch) -> None:
    root, _ = flat
    cfg = make_config(None, val_split=0.2, image_size=(32, 32), cache_dir=tmp_path)
    first = prepare_data(root, cfg, progress=False)
    assert list((tmp_path / "copies").glob("*.npz"))

    def no_pairs(*_args):
        raise AssertionError("the pairs were computed again")

    monkeypatch.setattr(copies_module, "_pairs", no_pairs)
    again = prepare_data(root, cfg, progress=False)
    assert np.array_equal(again.copies.groups, first.copies.groups)
    assert np.array_equal(again.splits.val, first.splits.val)


def test_where_pictures_hash_alike_only_exact_copies_are_grouped(flat, tmp_path, monkeypatch):
    root, _ = flat
    monkeypatch.setattr(copies_module, "chance_distance", lambda *_args: 14)
    cfg = make_config(None, val_split=0.2, image_size=(32, 32), cache_dir=tmp_path)
    prepared = prepare_data(root, cfg, progress=False)
    assert prepared.copies.altered == 0 and prepared.copies.sentence() is None
    assert "within 14 bits of 64" in prepared.copies.note
    exact = copies_module.exact_groups(prepared.records)
    assert np.array_equal(prepared.copies.groups, exact)


def test_a_split_the_source_gives_is_kept_without_looking_for_copies(
    flat, tmp_path: Path, monkeypatch
) -> None:
    root, _ = flat
    given = tmp_path / "given"
    for split in ("train", "val"):
        for label in ("circles", "squares"):
            (given / split / label).mkdir(parents=True)
            for path in sorted((root / label).glob("*"))[: 12 if split == "train" else 4]:
                (given / split / label / path.name).write_bytes(path.read_bytes())
    monkeypatch.setattr(copies_module, "_pairs", lambda *_args: pytest.fail("looked for copies"))
    cfg = make_config(None, image_size=(32, 32), cache_dir=tmp_path / "cache")
    prepared = prepare_data(given, cfg, progress=False)
    assert len(prepared.splits.val) == 8 and prepared.copies.altered == 0


def test_training_says_what_it_kept_together_and_records_it(flat, tmp_path, monkeypatch) -> None:
    root, families = flat
    monkeypatch.setenv("IMGCLF_CACHE_DIR", str(tmp_path / "cache"))
    members = sum(len(family) for family in families)
    result = CliRunner().invoke(app, [
        "train", str(root), "--model", "cnn", "--epochs", "1", "--image-size", "32",
        "--val-split", "0.2", "--test-split", "0.2", "--project", str(tmp_path / "runs"),
        "--name", "run",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert f"splits: {members} images with altered copies" in said
    assert "near-duplicates" not in said  # the leak check finds none across the carved splits
    report = json.loads((tmp_path / "runs" / "run" / "data_report.json").read_text())
    assert report["copies"]["rows_with_altered_copies"] == members


def test_a_damaged_pairs_file_is_computed_again(flat, tmp_path: Path) -> None:
    root, _ = flat
    cfg = make_config(None, val_split=0.2, image_size=(32, 32), cache_dir=tmp_path)
    first = prepare_data(root, cfg, progress=False)
    (kept,) = list((tmp_path / "copies").glob("*.npz"))
    kept.write_bytes(b"not a zip")
    again = prepare_data(root, cfg, progress=False)
    assert np.array_equal(again.copies.groups, first.copies.groups)
    assert kept.read_bytes()[:2] == b"PK"  # replaced by a good one


def test_a_first_run_hashes_its_images_once(flat, tmp_path, monkeypatch) -> None:
    """The run's leak check reuses the hashes its splits' copies were found with."""
    from imgclf.audit import quick
    from imgclf.data.pipeline.hashing import perceptual_hashes

    calls = []

    def counted(*args, **kwargs):
        calls.append(len(args[1]))
        return perceptual_hashes(*args, **kwargs)

    monkeypatch.setattr(copies_module, "perceptual_hashes", counted)
    monkeypatch.setattr(quick, "perceptual_hashes", counted)
    monkeypatch.setenv("IMGCLF_CACHE_DIR", str(tmp_path / "cache"))
    result = CliRunner().invoke(app, [
        "train", str(flat[0]), "--model", "cnn", "--epochs", "1", "--image-size", "32",
        "--val-split", "0.2", "--project", str(tmp_path / "runs"), "--name", "run",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert len(calls) == 1 and (tmp_path / "runs" / "run" / "audit.json").is_file()
