"""Class-folder trees: ``DATA/<class>/*`` or ``DATA/{train,val,test}/<class>/*``.

Image extensions are matched case-insensitively. Hidden files, other extensions, broken
symlinks and symlink loops are left out and reported in ``DataSource.skipped``; an empty class
folder is reported and left out too. Classes are sorted by name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from imgclf.data.formats.files import IMAGE_EXTENSIONS, Entry, display_path, walk_folder
from imgclf.data.source import SPLIT_ALIASES, DataSource, Skipped
from imgclf.errors import DataError

_EXTENSIONS_TEXT = " ".join(IMAGE_EXTENSIONS)


def read_folder(root: str | os.PathLike) -> DataSource:
    """Read a class-folder tree (plain or split into train/val/test) into a DataSource."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder. Pass a folder of class folders.")
    subdirs = _subfolders(root)
    split_dirs = {
        SPLIT_ALIASES[d.name.lower()]: d for d in subdirs if d.name.lower() in SPLIT_ALIASES
    }
    if split_dirs and "train" not in split_dirs:
        found = ", ".join(sorted(d.name for d in split_dirs.values()))
        raise DataError(
            f"{root} has split folders ({found}) but no 'train' folder. "
            "Add DATA/train/<class>/ or use DATA/<class>/ without split folders."
        )
    skipped: list[Skipped] = []
    if split_dirs:
        extra = [d for d in subdirs if d.name.lower() not in SPLIT_ALIASES]
        skipped += [
            Skipped(display_path(d), "not a split folder (train, val, test)") for d in extra
        ]
        groups = {split: _read_classes(path, skipped) for split, path in split_dirs.items()}
    else:
        groups = {None: _read_classes(root, skipped)}
    return _assemble(root, groups, skipped)


def _read_classes(folder: Path, skipped: list[Skipped]) -> dict[str, list[Path]]:
    classes: dict[str, list[Path]] = {}
    for entry in _subfolders(folder, skipped):
        files = _image_files(entry, skipped)
        if files:
            classes[entry.name] = files
        else:
            skipped.append(
                Skipped(
                    display_path(entry),
                    f"empty class folder: 0 images (looked for {_EXTENSIONS_TEXT}); "
                    "add images or remove the folder",
                )
            )
    for item in sorted(folder.iterdir()):
        if not item.name.startswith(".") and not item.is_dir():
            skipped.append(Skipped(display_path(item), "file outside any class folder"))
    return classes


def _subfolders(folder: Path, skipped: list[Skipped] | None = None) -> list[Path]:
    result = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("."):
            continue
        try:
            if entry.is_dir():
                result.append(Path(entry.path))
        except OSError as exc:
            if skipped is not None:
                skipped.append(Skipped(display_path(entry.path), f"unreadable: {exc.strerror}"))
    return result


def _image_files(class_dir: Path, skipped: list[Skipped]) -> list[Path]:
    """Every image file under a class folder (recursively), following symlinks without looping."""
    found: list[Path] = []
    for listing in walk_folder(class_dir):
        if listing.error is not None:
            raise listing.error
        if listing.loop:
            folder = display_path(listing.folder)
            skipped.append(Skipped(folder, "symlink loop: folder already visited"))
        for entry in reversed(listing.entries):  # (the order these skips were always listed in)
            if entry.kind == "image":
                found.append(entry.path)
            elif entry.kind != "folder":
                skipped.append(Skipped(display_path(entry.path), _skip_reason(entry)))
    return sorted(found)


def _skip_reason(entry: Entry) -> str:
    if entry.kind == "hidden":
        return "hidden file"
    if entry.kind == "broken":
        return f"broken link or unreadable: {entry.error.strerror}"
    return f"not an image extension (allowed: {_EXTENSIONS_TEXT})"


def _assemble(
    root: Path, groups: dict[str | None, dict[str, list[Path]]], skipped: list[Skipped]
) -> DataSource:
    classes = sorted({name for group in groups.values() for name in group})
    if not classes:
        raise DataError(
            f"{root} has no class folders with images (looked for {_EXTENSIONS_TEXT} in "
            f"{root}/<class>/ and {root}/train/<class>/). "
            "Put each class's images in its own folder."
        )
    index = {name: i for i, name in enumerate(classes)}
    paths, labels, splits = [], [], []
    for split, group in groups.items():
        for name, files in sorted(group.items()):
            paths += files
            labels += [index[name]] * len(files)
            splits += [split] * len(files)
    has_splits = any(s is not None for s in splits)
    return DataSource(
        name=str(root),
        classes=classes,
        labels=np.asarray(labels, dtype=np.int64),
        paths=paths,
        splits=np.asarray(splits, dtype=object) if has_splits else None,
        skipped=skipped,
    )
