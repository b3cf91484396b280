"""The model bundle: ``model.safetensors`` (weights) + ``model.json`` (the spec that rebuilds it).

A model is data, not a pickle: loading reads JSON and raw tensors, rebuilds the network from the
spec without downloading anything, and never executes code from the files. Saving is atomic: the
bundle is written into a temporary sibling directory and renamed into place, so a crash leaves
either the old bundle or the new one, never half of one.

``model.json`` holds the model's ``spec`` (format, imgclf_version, model config, classes,
preprocess) plus ``num_parameters``, ``tensors`` (the tensor count) and ``extra`` (whatever the
caller recorded, e.g. metrics). A run directory keeps its bundle in ``model/``; ``load_bundle``
accepts the run directory too.

``imgclf export`` adds model.onnx, parity.json and onnx.json: kept when the bundle is saved
again, with parity.json failed as stale if the model changed (nothing serves a stale graph).
"""

from __future__ import annotations

import filecmp
import json
import os
import secrets
import shutil
from pathlib import Path
from typing import Any

import torch

from imgclf._version import __version__
from imgclf.errors import ModelError
from imgclf.layout import (
    CONFIG_NAME,
    EXPORT_NAMES,
    PARITY_NAME,
    RUN_BUNDLE_DIR,
    SPEC_NAME,
    WEIGHTS_NAME,
)
from imgclf.models.network import SPEC_FORMAT, ImageModel, model_from_spec

REQUIRED_KEYS = ("format", "model", "classes", "preprocess")
BUNDLE_KEYS = ("num_parameters", "tensors", "extra")  # in model.json, not part of the spec
STALE = "the bundle was saved again with another model after this export: export it again"


def save_bundle(
    model: ImageModel,
    path: str | Path,
    overwrite: bool = False,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as a bundle directory at ``path``, atomically.

    Args:
        overwrite: Replace an existing bundle at ``path`` (never any other directory or file).
        extra: JSON-serialisable information stored under ``"extra"`` in model.json.

    Returns:
        The bundle directory.
    """
    target = Path(path)
    _check_model(model)
    _check_target(target, overwrite)
    tensors = _portable_state(model)
    text = _bundle_json(model, tensors, extra)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = _sibling(target, "tmp")
    staging.mkdir()  # not mkdtemp: its 0o700 mode would survive the rename and hide the bundle
    try:
        _write_files(staging, tensors, text)
        _carry_exports(target, staging)
        _move_into_place(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _fsync_dir(target.parent)
    return target


def load_bundle(path: str | Path) -> ImageModel:
    """Rebuild the model saved at ``path`` (a bundle or a run directory), in eval mode.

    Nothing is downloaded and no code is executed from the files: the architecture comes from
    model.json through ``model_from_spec`` and the weights from safetensors.
    """
    folder = bundle_dir(path)
    spec = _spec(read_bundle_json(folder))
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelError(
            f"Bundle {folder} is partial: {WEIGHTS_NAME} is missing (found {CONFIG_NAME} only). "
            "The save was interrupted or the file was removed; save the model again."
        )
    model = _build(spec, folder)
    state = _read_weights(weights)
    _check_tensors(model, state, folder)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"{weights} does not fit the model in {CONFIG_NAME}: {exc}") from None
    return model.eval()


def read_bundle_json(path: str | Path) -> dict[str, Any]:
    """The validated content of a bundle's model.json (spec, counts and ``extra``).

    Cheap: no tensors are read and no network is built, so listings and servers can use it.
    """
    folder = bundle_dir(path)
    file = folder / CONFIG_NAME
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(
            f"{file} is not valid JSON ({exc}). Restore it from the saved bundle or save the "
            "model again."
        ) from None
    _validate(data, file)
    return data


def bundle_dir(path: str | Path) -> Path:
    """The directory holding model.json: ``path`` itself, or ``path/model`` for a run."""
    folder = Path(path)
    if not folder.exists():
        raise ModelError(f"Model bundle {folder} does not exist. Pass a bundle or run directory.")
    if not folder.is_dir():
        raise ModelError(
            f"Model bundle {folder} is not a directory. Pass the directory holding {CONFIG_NAME} "
            f"and {WEIGHTS_NAME} (e.g. {folder.parent}), not a file in it."
        )
    if (folder / CONFIG_NAME).is_file():
        return folder
    if (folder / RUN_BUNDLE_DIR / CONFIG_NAME).is_file():
        return folder / RUN_BUNDLE_DIR
    weights = any((place / WEIGHTS_NAME).is_file() for place in (folder, folder / RUN_BUNDLE_DIR))
    partial = " (it holds weights only: a partial bundle)" if weights else ""
    raise ModelError(
        f"{folder} is not a model bundle: {CONFIG_NAME} is missing{partial}. Looked in {folder} "
        f"and {folder / RUN_BUNDLE_DIR}. A bundle holds {CONFIG_NAME} and {WEIGHTS_NAME}, as "
        "imgclf train and ImageClassifier.save write them."
    )


def is_bundle(path: str | Path) -> bool:
    """Whether ``path`` is a bundle directory that ``save_bundle(overwrite=True)`` may replace.

    Only model.* files and what ``imgclf export`` adds (EXPORT_NAMES, and the hidden temporary
    files of an interrupted write), at least one of them model.json or model.safetensors: a run
    directory or a folder with anything else in it is never a bundle, so it is never deleted.
    """
    folder = Path(path)
    if not folder.is_dir() or folder.is_symlink():
        return False
    entries = list(folder.iterdir())
    names = {entry.name for entry in entries}
    ours = all(entry.is_file() and _bundle_file(entry.name) for entry in entries)
    return ours and bool(names & {CONFIG_NAME, WEIGHTS_NAME})


def _bundle_file(name: str) -> bool:
    leftover = name.startswith(".") and name.endswith((".tmp", ".candidate"))  # an atomic write's
    ours = any(own in name for own in ("model.", PARITY_NAME, SPEC_NAME))
    return name.startswith("model.") or name in EXPORT_NAMES or (leftover and ours)


def _check_model(model: object) -> None:
    if not isinstance(model, ImageModel):
        raise ModelError(
            f"save_bundle needs an imgclf ImageModel, received {type(model).__name__}. Unwrap it "
            "first (model.module for DistributedDataParallel, model._orig_mod for torch.compile)."
        )


def _check_target(target: Path, overwrite: bool) -> None:
    if not target.exists() and not target.is_symlink():
        return
    if target.is_dir() and not target.is_symlink() and not any(target.iterdir()):
        return  # an empty directory is simply replaced
    if not is_bundle(target):
        raise ModelError(
            f"Cannot save a bundle to {target}: it exists and is not a model bundle (a bundle "
            f"directory holds only model.* files and {PARITY_NAME} and {SPEC_NAME} of an "
            "export). Choose a new path; nothing was written."
        )
    if not overwrite:
        raise ModelError(
            f"A model bundle already exists at {target}. Pass overwrite=True to replace it, or "
            "choose another path."
        )


def _portable_state(model: ImageModel) -> dict[str, torch.Tensor]:
    """CPU, contiguous tensors that share no memory: what safetensors accepts.

    channels_last weights are not contiguous, and tied or sliced tensors share storage; both
    are copied into plain tensors of their own.
    """
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, tensor in model.state_dict().items():
        plain = tensor.detach().to("cpu").contiguous()
        storage = plain.untyped_storage()
        if storage.data_ptr() in seen or storage.nbytes() != plain.numel() * plain.element_size():
            plain = plain.clone()
        seen.add(plain.untyped_storage().data_ptr())
        tensors[name] = plain
    return tensors


def _bundle_json(model: ImageModel, tensors: dict[str, torch.Tensor], extra: Any) -> str:
    if extra is not None and not isinstance(extra, dict):
        raise ModelError(f"extra must be a dict or None, received {type(extra).__name__}.")
    data = {
        **model.spec,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "tensors": len(tensors),
        "extra": extra or {},
    }
    try:
        return json.dumps(data, indent=2, default=_json_default) + "\n"
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"model.json cannot be written: {exc}. extra (and the spec) may hold only strings, "
            "numbers, booleans, None, lists and dicts with string keys. Nothing was written."
        ) from None


def _json_default(value: Any) -> Any:
    """numpy / torch scalars and paths, which metrics and configs often contain."""
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    tolist = getattr(value, "tolist", None)  # numpy scalars and arrays, torch tensors
    if callable(tolist):
        return tolist()
    raise TypeError(f"{type(value).__name__} {value!r} is not JSON serialisable")


def _write_files(folder: Path, tensors: dict[str, torch.Tensor], text: str) -> None:
    from safetensors.torch import save_file

    save_file(tensors, str(folder / WEIGHTS_NAME), metadata={"format": "pt"})
    (folder / CONFIG_NAME).write_text(text, encoding="utf-8")
    mode = (folder / CONFIG_NAME).stat().st_mode & 0o777  # the umask's; safetensors writes 0o600
    os.chmod(folder / WEIGHTS_NAME, mode)
    for name in (WEIGHTS_NAME, CONFIG_NAME):
        with open(folder / name, "r+b") as handle:
            os.fsync(handle.fileno())


def _carry_exports(target: Path, staging: Path) -> None:
    """The old bundle's exported files go into the new one: as they are when the model is the
    same (weights and spec), else with parity.json failed as STALE."""
    names = [name for name in EXPORT_NAMES if (target / name).is_file()]
    for name in names:
        shutil.copy2(target / name, staging / name)
    if PARITY_NAME in names and not _same_model(target, staging):
        parity = staging / PARITY_NAME
        try:
            record = dict(json.loads(parity.read_text(encoding="utf-8")))
        except (ValueError, TypeError):
            record = {}
        text = json.dumps({**record, "passed": False, "stale": STALE}, indent=2) + "\n"
        parity.write_text(text, encoding="utf-8")


def _same_model(old: Path, new: Path) -> bool:
    """Whether two bundle folders hold the same weights (byte for byte) and spec."""
    try:
        specs = [_spec(json.loads((f / CONFIG_NAME).read_text("utf-8"))) for f in (old, new)]
        weights = filecmp.cmp(old / WEIGHTS_NAME, new / WEIGHTS_NAME, shallow=False)
    except (OSError, ValueError, AttributeError):
        return False
    return weights and specs[0] == specs[1]


def _move_into_place(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; an existing target is renamed away first, then removed."""
    if not target.exists():
        os.rename(staging, target)
        return
    old = _sibling(target, "old")
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _sibling(target: Path, kind: str) -> Path:
    """A hidden, unused name beside ``target``: same filesystem, so renames are atomic."""
    return target.with_name(f".{target.name}.{secrets.token_hex(6)}.{kind}")


def _fsync_dir(folder: Path) -> None:
    """Make the renames durable (POSIX only; Windows cannot open directories)."""
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _validate(data: Any, file: Path) -> None:
    if not isinstance(data, dict):
        raise ModelError(f"{file} must hold a JSON object, received {type(data).__name__}.")
    missing = [key for key in REQUIRED_KEYS if key not in data]
    if missing:
        raise ModelError(
            f"{file} lacks the required keys {missing} (required: {', '.join(REQUIRED_KEYS)}). "
            "It was not written by save_bundle or was edited; save the model again."
        )
    _validate_format(data["format"], data.get("imgclf_version", "unknown"), file)
    classes = data["classes"]
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ModelError(f"{file}: 'classes' must be a list of names, received {classes!r}.")
    if len(classes) < 2 or len(set(classes)) != len(classes):
        raise ModelError(
            f"{file}: 'classes' must hold at least 2 distinct names, received {classes!r}."
        )
    for key in ("model", "preprocess"):
        if not isinstance(data[key], dict):
            raise ModelError(f"{file}: '{key}' must be an object, received {data[key]!r}.")


def _validate_format(number: Any, version: Any, file: Path) -> None:
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise ModelError(
            f"{file}: 'format' must be a whole number from 1 to {SPEC_FORMAT}, received {number!r}."
        )
    if number > SPEC_FORMAT:
        raise ModelError(
            f"{file} has bundle format {number} (saved by imgclf {version}), but this imgclf "
            f"({__version__}) reads formats up to {SPEC_FORMAT}. Upgrade imgclf: "
            "pip install --upgrade imgclf"
        )


def _spec(data: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if key not in BUNDLE_KEYS}


def _build(spec: dict[str, Any], folder: Path) -> ImageModel:
    from pydantic import ValidationError

    try:
        return model_from_spec(spec, load_weights=False)
    except ModelError as exc:
        raise ModelError(f"The model in {folder / CONFIG_NAME} cannot be built: {exc}") from None
    except (ValidationError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(
            f"The model in {folder / CONFIG_NAME} cannot be built ({type(exc).__name__}: {exc}). "
            "The file was edited or is damaged; restore it or save the model again."
        ) from None


def _read_weights(file: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(file), device="cpu")
    except Exception as exc:  # safetensors raises several types for damaged files
        raise ModelError(
            f"{file} cannot be read ({type(exc).__name__}: {exc}): it is truncated or corrupt. "
            "Copy the bundle again or save the model again."
        ) from None


def _check_tensors(model: ImageModel, state: dict[str, torch.Tensor], folder: Path) -> None:
    """Name what does not match, classes first: that is the usual hand edit of model.json."""
    own = model.state_dict()
    wrong = [k for k in own if k in state and tuple(own[k].shape) != tuple(state[k].shape)]
    _check_classes(model, [(own[k].shape, state[k].shape, k) for k in wrong], folder)
    missing, unexpected = [k for k in own if k not in state], [k for k in state if k not in own]
    if missing or unexpected or wrong:
        raise ModelError(
            f"{folder / WEIGHTS_NAME} does not fit the architecture in {CONFIG_NAME}: "
            f"{len(missing)} tensors missing (e.g. {missing[:3]}), {len(unexpected)} unexpected "
            f"(e.g. {unexpected[:3]}), {len(wrong)} with another shape (e.g. {wrong[:3]}). The "
            "two files come from different models; save the model again."
        )


def _check_classes(
    model: ImageModel, wrong: list[tuple[torch.Size, torch.Size, str]], folder: Path
) -> None:
    count = len(model.classes)
    for want, got, name in wrong:
        if name.startswith("head.") and want[0] == count != got[0] and len(got) == len(want):
            raise ModelError(
                f"The classes in {CONFIG_NAME} ({count}) do not match the weights ({got[0]}) in "
                f"{folder}: the class layer {name} has {got[0]} outputs. Restore the 'classes' "
                f"list in {CONFIG_NAME} to the {got[0]} classes the model was trained on."
            )
