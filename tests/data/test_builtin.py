"""Built-in sets: registry, data dir, IDX and CIFAR-10 binary parsing, download and its errors.

Everything runs on tiny files written here (IDX gzip, CIFAR binary batches, a tar.gz); downloads
are served from ``file://`` URLs, so no test needs the internet.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import struct
import tarfile
import urllib.request
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from imgclf.data.formats import builtin
from imgclf.data.formats.builtin import (
    CIFAR10,
    FASHION_MNIST,
    MNIST,
    list_datasets,
    load_builtin,
    load_cifar_set,
    load_idx_set,
    register_dataset,
    resolve_data_dir,
)
from imgclf.data.formats.download import download_file
from imgclf.errors import DataError

IDX_NAMES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
TINY_IDX_SIZES = {"train": 5, "test": 3}
TINY_CIFAR_SIZES = {"train": 10, "test": 3}
CIFAR_TRAIN = [f"data_batch_{i}.bin" for i in range(1, 6)]
OFFICIAL_CIFAR_CLASSES = [
    *("airplane", "automobile", "bird", "cat", "deer"),
    *("dog", "frog", "horse", "ship", "truck"),
]


# ---------------------------------------------------------------- writers (the file formats)


def idx_bytes(array: np.ndarray, magic: int) -> bytes:
    """Uncompressed IDX: big-endian magic, one big-endian uint32 per dim, then uint8 data."""
    dims = b"".join(struct.pack(">I", d) for d in array.shape)
    return struct.pack(">I", magic) + dims + array.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, arrays: dict[str, np.ndarray]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for split, (images_name, labels_name) in IDX_NAMES.items():
        (folder / images_name).write_bytes(gzip.compress(idx_bytes(arrays[f"{split}_x"], 2051)))
        (folder / labels_name).write_bytes(gzip.compress(idx_bytes(arrays[f"{split}_y"], 2049)))


def cifar_bytes(images: np.ndarray, labels: np.ndarray) -> bytes:
    """CIFAR-10 binary records: label byte, then the R, G and B planes (32x32, row-major)."""
    return b"".join(
        bytes([int(label)]) + image.transpose(2, 0, 1).tobytes()
        for image, label in zip(images, labels, strict=True)
    )


def cifar_members(arrays: dict[str, np.ndarray]) -> dict[str, bytes]:
    """Batch file name -> bytes: two records per train batch, three in the test batch."""
    members = {
        name: cifar_bytes(
            arrays["train_x"][2 * i : 2 * i + 2], arrays["train_y"][2 * i : 2 * i + 2]
        )
        for i, name in enumerate(CIFAR_TRAIN)
    }
    members["test_batch.bin"] = cifar_bytes(arrays["test_x"], arrays["test_y"])
    return members


def write_tar_gz(path: Path, members: dict[str, bytes]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def files_in(folder: Path) -> set[str]:
    """Every entry, hidden temp files included, so a leftover partial download shows up."""
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


# ---------------------------------------------------------------- fixtures


@pytest.fixture
def idx_arrays(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {
        "train_x": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
        "train_y": np.array([3, 0, 9, 1, 3], dtype=np.uint8),
        "test_x": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
        "test_y": np.array([7, 2, 0], dtype=np.uint8),
    }
    arrays["train_x"][0, 3, 7] = 200  # a known pixel: row 3, column 7 of the first image
    return arrays


@pytest.fixture
def mnist_root(tmp_path: Path, idx_arrays: dict[str, np.ndarray]) -> Path:
    """A data dir whose mnist/ holds the four tiny IDX gzip files."""
    write_idx_set(tmp_path / "data" / "mnist", idx_arrays)
    return tmp_path / "data"


@pytest.fixture
def tiny_mnist() -> builtin.DatasetSpec:
    return replace(MNIST, sizes=TINY_IDX_SIZES)


@pytest.fixture
def cifar_arrays(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    return {
        "train_x": rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8),
        "train_y": np.arange(10, dtype=np.uint8)[::-1].copy(),
        "test_x": rng.integers(0, 256, (3, 32, 32, 3), dtype=np.uint8),
        "test_y": np.array([4, 4, 1], dtype=np.uint8),
    }


@pytest.fixture
def cifar_folder_root(tmp_path: Path, cifar_arrays: dict[str, np.ndarray]) -> Path:
    """A data dir whose cifar10/cifar-10-batches-bin/ holds the six tiny batches."""
    batches = tmp_path / "data" / "cifar10" / "cifar-10-batches-bin"
    batches.mkdir(parents=True)
    for name, data in cifar_members(cifar_arrays).items():
        (batches / name).write_bytes(data)
    return tmp_path / "data"


@pytest.fixture
def cifar_archive(tmp_path: Path, cifar_arrays: dict[str, np.ndarray]) -> Path:
    """A cifar-10-binary.tar.gz laid out like the official one (plus an unrelated member)."""
    members = {f"cifar-10-batches-bin/{n}": d for n, d in cifar_members(cifar_arrays).items()}
    members["cifar-10-batches-bin/readme.html"] = b"<html></html>"
    path = tmp_path / "server" / "cifar-10-binary.tar.gz"
    write_tar_gz(path, members)
    return path


@pytest.fixture
def tiny_cifar() -> builtin.DatasetSpec:
    return replace(CIFAR10, sizes=TINY_CIFAR_SIZES)


def expected_idx(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    images = np.concatenate([arrays["train_x"], arrays["test_x"]])[..., None]
    return images, np.concatenate([arrays["train_y"], arrays["test_y"]]).astype(np.int64)


# ---------------------------------------------------------------- registry and data dir


def test_list_datasets_names_the_builtin_sets() -> None:
    names = list_datasets()
    assert {"digits", "mnist", "fashion-mnist", "cifar10"} <= set(names)
    assert names == sorted(names)


def test_unknown_name_lists_available_sets_and_suggests_the_closest() -> None:
    with pytest.raises(DataError) as info:
        load_builtin("mnsit")
    message = str(info.value)
    assert "'mnsit'" in message
    assert "cifar10, digits, fashion-mnist, mnist" in message
    assert "Did you mean 'mnist'?" in message


def test_names_are_case_and_separator_insensitive(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="built-in dataset 'fashion-mnist' is missing"):
        load_builtin("Fashion_MNIST", data_dir=tmp_path, download=False)


def test_registered_factory_gets_the_resolved_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(builtin, "_REGISTRY", dict(builtin._REGISTRY))
    seen = {}

    @register_dataset("tiny-test-set")
    def _factory(data_dir: Path, download: bool) -> builtin.DataSource:
        seen.update(data_dir=data_dir, download=download)
        return builtin.DataSource(
            name="tiny", classes=["a"], labels=[0], images=np.zeros((1, 2, 2, 1), np.uint8)
        )

    monkeypatch.chdir(tmp_path)
    source = load_builtin("Tiny_Test_Set", data_dir="sets", download=False)
    assert source.name == "tiny"
    assert seen == {"data_dir": tmp_path.resolve() / "sets", "download": False}
    assert "tiny-test-set" in list_datasets()
    with pytest.raises(ValueError, match="already registered"):
        register_dataset("tiny-test-set")(_factory)


def test_resolve_data_dir_prefers_argument_then_env_then_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("IMGCLF_DATA_DIR", raising=False)
    assert resolve_data_dir() == tmp_path / "home" / ".cache" / "imgclf" / "datasets"
    monkeypatch.setenv("IMGCLF_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir(None) == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert resolve_data_dir("~/sets") == tmp_path / "home" / "sets"


# ---------------------------------------------------------------- digits


def test_digits_are_uint8_images_scaled_to_255() -> None:
    from sklearn.datasets import load_digits

    raw = load_digits()
    source = load_builtin("digits")
    assert source.name == "digits"
    assert source.images.shape == (1797, 8, 8, 1)
    assert source.images.dtype == np.uint8
    assert source.classes == [str(d) for d in range(10)]
    assert source.splits is None
    assert source.images.min() == 0 and source.images.max() == 255
    rounded = (raw.images.astype(np.int64) * 255 + 8) // 16  # x*255/16, halves rounded up
    np.testing.assert_array_equal(source.images[..., 0], rounded)
    np.testing.assert_array_equal(source.labels, raw.target)


def test_digits_need_no_data_dir(tmp_path: Path) -> None:
    source = load_builtin("digits", data_dir=tmp_path / "nowhere", download=False)
    assert len(source) == 1797
    assert not (tmp_path / "nowhere").exists()


# ---------------------------------------------------------------- MNIST-style IDX files


def test_idx_set_reads_pixels_labels_splits_exactly(
    mnist_root: Path, tiny_mnist: builtin.DatasetSpec, idx_arrays: dict[str, np.ndarray]
) -> None:
    # The tiny files do not match the official md5: local files are checked by content only.
    source = load_idx_set(tiny_mnist, mnist_root, download=False)
    images, labels = expected_idx(idx_arrays)
    assert source.name == "mnist"
    assert source.images.shape == (8, 28, 28, 1) and source.images.dtype == np.uint8
    np.testing.assert_array_equal(source.images, images)
    assert source.images[0, 3, 7, 0] == 200
    np.testing.assert_array_equal(source.labels, labels)
    assert source.splits.tolist() == ["train"] * 5 + ["test"] * 3
    assert source.classes == [str(d) for d in range(10)]
    assert source.images.flags.writeable


def test_fashion_mnist_uses_official_class_names(
    tmp_path: Path, idx_arrays: dict[str, np.ndarray]
) -> None:
    write_idx_set(tmp_path / "fashion-mnist", idx_arrays)
    source = load_idx_set(replace(FASHION_MNIST, sizes=TINY_IDX_SIZES), tmp_path, download=False)
    assert source.classes == [
        *("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat"),
        *("Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
    ]
    assert source.name == "fashion-mnist"
    np.testing.assert_array_equal(source.images, expected_idx(idx_arrays)[0])


def test_local_files_must_hold_the_official_number_of_images(mnist_root: Path) -> None:
    with pytest.raises(DataError) as info:
        load_builtin("mnist", data_dir=mnist_root, download=False)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz holds 5 images, expected 60000" in message
    assert "Delete it" in message


def _bad_magic(folder: Path, arrays: dict) -> None:
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(arrays["train_y"], 2051)))


def _truncated_data(folder: Path, arrays: dict) -> None:
    data = idx_bytes(arrays["test_x"], 2051)[:-100]
    (folder / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(data))


def _trailing_data(folder: Path, arrays: dict) -> None:
    data = idx_bytes(arrays["test_y"], 2049) + b"\x00"
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(data))


def _truncated_gzip(folder: Path, arrays: dict) -> None:
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def _not_gzip(folder: Path, arrays: dict) -> None:
    (folder / "train-images-idx3-ubyte.gz").write_bytes(idx_bytes(arrays["train_x"], 2051))


def _short_header(folder: Path, arrays: dict) -> None:
    data = struct.pack(">I", 2051) + struct.pack(">I", 5)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(data))


def _label_count(folder: Path, arrays: dict) -> None:
    path = folder / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_bytes(arrays["train_y"][:4], 2049)))


def _label_value(folder: Path, arrays: dict) -> None:
    labels = arrays["test_y"].copy()
    labels[1] = 10
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels, 2049)))


def _image_size(folder: Path, arrays: dict) -> None:
    images = np.zeros((5, 27, 28), np.uint8)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images, 2051)))


@pytest.mark.parametrize(
    ("corrupt", "expected"),
    [
        (
            _bad_magic,
            r"train-labels-idx1-ubyte.gz is not an IDX label file: magic number 2051, "
            r"expected 2049",
        ),
        (
            _truncated_data,
            r"t10k-images-idx3-ubyte.gz is truncated: its header says 3 x 28 x 28 "
            r"= 2352 bytes of image data, the file holds 2252",
        ),
        (_trailing_data, r"t10k-labels-idx1-ubyte.gz has trailing bytes"),
        (_truncated_gzip, r"train-images-idx3-ubyte.gz cannot be decompressed"),
        (_not_gzip, r"train-images-idx3-ubyte.gz cannot be decompressed"),
        (_short_header, r"train-images-idx3-ubyte.gz is truncated inside its 16-byte header"),
        (
            _label_count,
            r"train-images-idx3-ubyte.gz holds 5 images but .*"
            r"train-labels-idx1-ubyte.gz holds 4 labels",
        ),
        (_label_value, r"t10k-labels-idx1-ubyte.gz has label value 10, expected 0..9"),
        (_image_size, r"train-images-idx3-ubyte.gz holds 27x28 images, expected 28x28"),
    ],
    ids=lambda value: getattr(value, "__name__", "")[1:] or None,
)
def test_corrupt_idx_files_raise_a_clear_error(
    mnist_root: Path, tiny_mnist: builtin.DatasetSpec, idx_arrays: dict, corrupt, expected: str
) -> None:
    corrupt(mnist_root / "mnist", idx_arrays)
    with pytest.raises(DataError, match=expected) as info:
        load_idx_set(tiny_mnist, mnist_root, download=False)
    assert "Traceback" not in str(info.value)


def test_missing_files_without_download_say_what_where_and_from_where(tmp_path: Path) -> None:
    folder = tmp_path / "mnist"
    folder.mkdir()
    present = ["train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    for name in present:
        (folder / name).write_bytes(b"")
    with pytest.raises(DataError) as info:
        load_builtin("mnist", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert "missing train-images-idx3-ubyte.gz, t10k-images-idx3-ubyte.gz in " in message
    assert f"put them in {folder}" in message
    for name in ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz"):
        assert f"https://ossci-datasets.s3.amazonaws.com/mnist/{name}" in message
    assert "http://yann.lecun.com/exdb/mnist/" in message
    for name in present:
        assert f"/mnist/{name}" not in message
    assert "--data-dir" in message and "IMGCLF_DATA_DIR" in message
    assert "download=False" in message
    assert files_in(folder) == set(present)


# ---------------------------------------------------------------- downloads (file:// mirrors)


@pytest.fixture
def mnist_server(tmp_path: Path, idx_arrays: dict[str, np.ndarray]) -> Path:
    """A folder standing in for a mirror: the four tiny IDX files, reached by file:// URL."""
    server = tmp_path / "server"
    write_idx_set(server, idx_arrays)
    return server


def served_spec(server: Path, mirrors: tuple[str, ...] = ()) -> builtin.DatasetSpec:
    names = [name for pair in IDX_NAMES.values() for name in pair]
    return replace(
        MNIST,
        sizes=TINY_IDX_SIZES,
        mirrors=(*mirrors, server.as_uri() + "/"),
        md5={name: md5(server / name) for name in names},
    )


def test_download_fetches_verifies_and_loads(
    tmp_path: Path, mnist_server: Path, idx_arrays: dict[str, np.ndarray]
) -> None:
    data_dir = tmp_path / "data"
    source = load_idx_set(served_spec(mnist_server), data_dir, download=True)
    images, labels = expected_idx(idx_arrays)
    np.testing.assert_array_equal(source.images, images)
    np.testing.assert_array_equal(source.labels, labels)
    assert files_in(data_dir / "mnist") == {n for pair in IDX_NAMES.values() for n in pair}


def test_download_falls_back_to_the_next_mirror(tmp_path: Path, mnist_server: Path) -> None:
    dead = (tmp_path / "no-such-mirror").as_uri() + "/"
    source = load_idx_set(served_spec(mnist_server, (dead,)), tmp_path / "data", download=True)
    assert len(source) == 8


def test_download_with_wrong_checksum_fails_and_leaves_no_file(
    tmp_path: Path, mnist_server: Path
) -> None:
    spec = served_spec(mnist_server)
    spec = replace(spec, md5={**spec.md5, "t10k-images-idx3-ubyte.gz": "0" * 32})
    with pytest.raises(DataError) as info:
        load_idx_set(spec, tmp_path / "data", download=True)
    message = str(info.value)
    assert "could not download t10k-images-idx3-ubyte.gz" in message
    assert f"md5 checksum mismatch (expected {'0' * 32}, got " in message
    assert "missing t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz in " in message
    assert files_in(tmp_path / "data" / "mnist") == set(IDX_NAMES["train"])


def test_download_failure_names_urls_folder_and_data_dir_options(tmp_path: Path) -> None:
    spec = replace(MNIST, mirrors=((tmp_path / "offline").as_uri() + "/",))
    with pytest.raises(DataError) as info:
        load_idx_set(spec, tmp_path / "data", download=True)
    message = str(info.value)
    folder = tmp_path / "data" / "mnist"
    assert "could not download train-images-idx3-ubyte.gz" in message
    assert (tmp_path / "offline").as_uri() + "/t10k-labels-idx1-ubyte.gz" in message
    assert f"put them in {folder}" in message
    assert "--data-dir" in message and "IMGCLF_DATA_DIR" in message
    assert files_in(folder) == set()


class _BrokenResponse(io.BytesIO):
    """A response that delivers some bytes and then loses the connection."""

    def read(self, size: int = -1) -> bytes:
        if self.tell():
            raise ConnectionResetError("Connection reset by peer")
        return super().read(10)


def test_interrupted_download_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(urllib.request, "urlopen", lambda *a, **k: _BrokenResponse(b"x" * 100))
    dest = tmp_path / "sets" / "file.gz"
    with pytest.raises(DataError, match=r"could not download file.gz .*Connection reset by peer"):
        download_file(["https://example.invalid/file.gz"], dest, "0" * 32)
    assert files_in(dest.parent) == set()


def test_download_file_returns_the_url_used_and_leaves_only_the_file(tmp_path: Path) -> None:
    source = tmp_path / "src.bin"
    source.write_bytes(b"payload")
    dest = tmp_path / "out" / "file.bin"
    dead = (tmp_path / "dead.bin").as_uri()
    url = download_file([dead, source.as_uri()], dest, md5(source).upper())
    assert url == source.as_uri()
    assert dest.read_bytes() == b"payload"
    assert files_in(dest.parent) == {"file.bin"}


# ---------------------------------------------------------------- CIFAR-10 binary version


def expected_cifar(arrays: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    images = np.concatenate([arrays["train_x"], arrays["test_x"]])
    return images, np.concatenate([arrays["train_y"], arrays["test_y"]]).astype(np.int64)


def test_cifar_folder_reads_pixels_labels_splits_exactly(
    cifar_folder_root: Path, tiny_cifar: builtin.DatasetSpec, cifar_arrays: dict
) -> None:
    source = load_cifar_set(tiny_cifar, cifar_folder_root, download=False)
    images, labels = expected_cifar(cifar_arrays)
    assert source.name == "cifar10"
    assert source.images.shape == (13, 32, 32, 3) and source.images.dtype == np.uint8
    np.testing.assert_array_equal(source.images, images)
    np.testing.assert_array_equal(source.labels, labels)
    assert source.splits.tolist() == ["train"] * 10 + ["test"] * 3
    assert source.classes == OFFICIAL_CIFAR_CLASSES
    # Record layout by hand: byte 0 is the label, then 1024 R, 1024 G, 1024 B bytes, row-major.
    record = (
        cifar_folder_root / "cifar10" / "cifar-10-batches-bin" / "data_batch_2.bin"
    ).read_bytes()
    assert source.labels[2] == record[0]
    assert source.images[2, 4, 9, 1] == record[1 + 1024 + 4 * 32 + 9]
    assert source.images[2, 31, 0, 2] == record[1 + 2048 + 31 * 32]


def test_cifar_archive_is_read_without_extracting(
    tmp_path: Path, cifar_archive: Path, tiny_cifar: builtin.DatasetSpec, cifar_arrays: dict
) -> None:
    folder = tmp_path / "data" / "cifar10"
    folder.mkdir(parents=True)
    (folder / "cifar-10-binary.tar.gz").write_bytes(cifar_archive.read_bytes())
    source = load_cifar_set(tiny_cifar, tmp_path / "data", download=False)
    images, labels = expected_cifar(cifar_arrays)
    np.testing.assert_array_equal(source.images, images)
    np.testing.assert_array_equal(source.labels, labels)
    assert source.splits.tolist() == ["train"] * 10 + ["test"] * 3
    assert files_in(folder) == {"cifar-10-binary.tar.gz"}


def test_cifar_class_names_come_from_batches_meta(
    cifar_folder_root: Path, tiny_cifar: builtin.DatasetSpec
) -> None:
    names = [f"class {i}" for i in range(10)]
    meta = cifar_folder_root / "cifar10" / "cifar-10-batches-bin" / "batches.meta.txt"
    meta.write_text("\n".join(names) + "\n\n")
    assert load_cifar_set(tiny_cifar, cifar_folder_root, download=False).classes == names
    meta.write_text("only\ntwo\n")
    with pytest.raises(DataError, match=r"batches.meta.txt lists 2 class names, expected 10"):
        load_cifar_set(tiny_cifar, cifar_folder_root, download=False)


def test_cifar_truncated_batch_is_named(
    cifar_folder_root: Path, tiny_cifar: builtin.DatasetSpec
) -> None:
    batch = cifar_folder_root / "cifar10" / "cifar-10-batches-bin" / "data_batch_3.bin"
    batch.write_bytes(batch.read_bytes()[:-5])
    with pytest.raises(
        DataError, match=r"data_batch_3.bin is 6141 bytes, not a whole number of 3073"
    ):
        load_cifar_set(tiny_cifar, cifar_folder_root, download=False)


def test_cifar_local_files_must_hold_the_official_number_of_images(
    cifar_folder_root: Path,
) -> None:
    with pytest.raises(DataError, match=r"holds 10 images, expected 50000 for cifar10's train"):
        load_builtin("cifar10", data_dir=cifar_folder_root, download=False)


@pytest.mark.parametrize(
    ("members", "expected"),
    [
        ({"cifar-10-batches-bin/data_batch_1.bin": b"x"}, r"has no data_batch_2.bin, .*test_batch"),
        ({"cifar-10-batches-py/data_batch_1": b"x"}, r"not CIFAR-10's binary version"),
    ],
    ids=["incomplete", "python-version"],
)
def test_cifar_archive_without_the_binary_batches_is_rejected(
    tmp_path: Path, tiny_cifar: builtin.DatasetSpec, members: dict, expected: str
) -> None:
    write_tar_gz(tmp_path / "cifar10" / "cifar-10-binary.tar.gz", members)
    with pytest.raises(DataError, match=expected):
        load_cifar_set(tiny_cifar, tmp_path, download=False)


def test_cifar_truncated_archive_is_a_clear_error(
    tmp_path: Path, cifar_archive: Path, tiny_cifar: builtin.DatasetSpec
) -> None:
    target = tmp_path / "data" / "cifar10" / "cifar-10-binary.tar.gz"
    target.parent.mkdir(parents=True)
    target.write_bytes(cifar_archive.read_bytes()[:2000])
    with pytest.raises(DataError, match=r"cifar-10-binary.tar.gz cannot be read as a .tar.gz"):
        load_cifar_set(tiny_cifar, tmp_path / "data", download=False)


def test_cifar_missing_without_download_says_what_where_and_from_where(tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        load_builtin("cifar10", data_dir=tmp_path, download=False)
    message = str(info.value)
    assert "missing cifar-10-binary.tar.gz in " in message
    assert "cifar-10-batches-bin/" in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz" in message
    assert f"put it in {tmp_path / 'cifar10'}" in message
    assert "--data-dir" in message and "IMGCLF_DATA_DIR" in message


def test_cifar_download_is_checked_then_read_from_the_archive(
    tmp_path: Path, cifar_archive: Path, tiny_cifar: builtin.DatasetSpec, cifar_arrays: dict
) -> None:
    mirror = (cifar_archive.parent.as_uri() + "/",)
    good = replace(tiny_cifar, mirrors=mirror, md5={cifar_archive.name: md5(cifar_archive)})
    source = load_cifar_set(good, tmp_path / "data", download=True)
    np.testing.assert_array_equal(source.images, expected_cifar(cifar_arrays)[0])
    assert files_in(tmp_path / "data" / "cifar10") == {"cifar-10-binary.tar.gz"}

    bad = replace(good, md5={cifar_archive.name: "f" * 32})
    with pytest.raises(DataError, match="md5 checksum mismatch"):
        load_cifar_set(bad, tmp_path / "other", download=True)
    assert files_in(tmp_path / "other" / "cifar10") == set()


# ---------------------------------------------------------------- real MNIST (../shared/datasets)

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def check_real_mnist(source: builtin.DataSource) -> None:
    train = source.splits == "train"
    assert source.images.shape == (70_000, 28, 28, 1)
    assert int(train.sum()) == 60_000 and int((source.splits == "test").sum()) == 10_000
    assert np.bincount(source.labels[train], minlength=10).tolist() == MNIST_TRAIN_COUNTS
    assert np.bincount(source.labels[~train], minlength=10).tolist() == MNIST_TEST_COUNTS
    assert abs(float(source.images[train].mean()) - 0.1307 * 255) < 0.5


@pytest.mark.realdata
def test_real_mnist_from_data_dir(shared_datasets: Path) -> None:
    check_real_mnist(load_builtin("mnist", data_dir=shared_datasets, download=False))


@pytest.mark.realdata
def test_real_mnist_from_env(shared_datasets: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGCLF_DATA_DIR", str(shared_datasets))
    check_real_mnist(load_builtin("mnist", download=False))
