"""The model manifest and the local model store.

``models/manifest.json`` lists every model Varta uses: its files with their official URL
(or, for models shipped inside a Python wheel, the package and the path in it), sha256,
size, licence, input layout and labels. The first entry of a model name is its default
precision.

The store keeps downloaded files as ``<root>/<model>/<precision>/<file>``. Files of
``source="pypi"`` models are not copied: they are resolved inside the installed package.
Every file is checked against its sha256 before a path to it is handed out; a store
object remembers which files it has verified (keyed by path, size and mtime), so the
hashing cost is paid once per process.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec

from shared.errors import ModelCorrupt, ModelMissing
from shared.paths import REPO_ROOT, model_mirror

log = logging.getLogger(__name__)

MANIFEST_PATH = Path(__file__).with_name("manifest.json")
_CHUNK = 1 << 20

FileState = Literal["verified", "present", "missing", "corrupt"]


class ManifestFile(msgspec.Struct, frozen=True, kw_only=True):
    """One file of a model: where it comes from and what its bytes must hash to."""

    name: str
    sha256: str
    size: int
    url: str = ""
    package_path: str = ""


class ModelInput(msgspec.Struct, frozen=True, kw_only=True):
    """An input tensor as the model declares it (-1 marks a dynamic dimension)."""

    name: str
    layout: str
    shape: list[int]
    colour: str = "BGR"


class ModelEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One model at one precision."""

    name: str
    precision: str
    source: Literal["url", "pypi"]
    licence: str
    description: str
    files: list[ManifestFile]
    inputs: list[ModelInput]
    labels: dict[str, list[str]] = {}
    package: str = ""
    package_version: str = ""

    @property
    def key(self) -> str:
        """``name/precision``, as shown by ``varta models list``."""
        return f"{self.name}/{self.precision}"

    @property
    def graph_file(self) -> ManifestFile:
        """The file OpenVINO reads (``.xml`` or ``.onnx``); weights sit beside it."""
        for file in self.files:
            if file.name.endswith((".xml", ".onnx")):
                return file
        raise ValueError(f"model {self.key} lists no .xml or .onnx file")


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """The parsed ``manifest.json``."""

    schema: int
    models: list[ModelEntry]
    comment: str = ""

    def select(self, names: list[str] | None = None) -> list[ModelEntry]:
        """Entries whose model name is in ``names`` (all entries when ``names`` is empty).

        Raises:
            ModelMissing: a name is not in the manifest.
        """
        if not names:
            return list(self.models)
        known = {entry.name for entry in self.models}
        unknown = sorted(set(names) - known)
        if unknown:
            listed = ", ".join(sorted(known))
            raise ModelMissing(
                f"unknown model(s) {', '.join(unknown)}; the manifest lists: {listed}"
            )
        return [entry for entry in self.models if entry.name in names]

    def entry(self, name: str, precision: str | None = None) -> ModelEntry:
        """The entry for ``name`` at ``precision`` (default: the first one listed)."""
        matches = [e for e in self.models if e.name == name]
        if precision is not None:
            matches = [e for e in matches if e.precision == precision]
        if not matches:
            listed = sorted({e.key for e in self.models})
            raise ModelMissing(
                f"model {name}/{precision or '<default>'} is not in the manifest "
                f"{MANIFEST_PATH}; it lists: {', '.join(listed)}"
            )
        return matches[0]


@dataclass(frozen=True)
class FileStatus:
    """The state of one model file in a store, for ``varta models list``."""

    model: str
    precision: str
    file: str
    path: Path
    state: FileState
    size: int


def load_manifest(path: Path = MANIFEST_PATH) -> Manifest:
    """Read and validate the model manifest."""
    return msgspec.json.decode(path.read_bytes(), type=Manifest)


def default_models_dir() -> Path:
    """``$VARTA_MODELS`` if set, else ``<repo>/var/models``."""
    env = os.environ.get("VARTA_MODELS")
    return Path(env) if env else REPO_ROOT / "var" / "models"


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def pull_command(root: Path) -> str:
    """The command that fills a store at ``root`` from the shared offline mirror."""
    return f"varta models pull --mirror {model_mirror()} --dest {root}"


class ModelStore:
    """Model files under one root directory, verified against the manifest.

    Args:
        root: Directory holding ``<model>/<precision>/<file>``.
        manifest: The manifest to check against (default: ``models/manifest.json``).
    """

    def __init__(self, root: Path, manifest: Manifest | None = None) -> None:
        self.root = root
        self.manifest = manifest if manifest is not None else load_manifest()
        self._verified: set[tuple[Path, int, int]] = set()

    def file_path(self, entry: ModelEntry, file: ManifestFile) -> Path:
        """Where ``file`` of ``entry`` lives (in the store, or in the installed package).

        Raises:
            ModelMissing: a ``pypi`` model's package is not installed.
        """
        if entry.source == "pypi":
            try:
                dist = importlib.metadata.distribution(entry.package)
            except importlib.metadata.PackageNotFoundError as err:
                raise ModelMissing(
                    f"model {entry.key} ships in the Python package {entry.package} "
                    f"{entry.package_version}, which is not installed; "
                    f"install it with: pip install '{entry.package}=={entry.package_version}'"
                ) from err
            return Path(str(dist.locate_file(file.package_path)))
        return self.root / entry.name / entry.precision / file.name

    def path(self, model: str, precision: str | None = None) -> Path:
        """The verified ``.xml`` / ``.onnx`` path of a model (weights sit beside it).

        Args:
            model: Model name as in the manifest, e.g. ``vehicle-detection-0200``.
            precision: e.g. ``FP16-INT8``; ``None`` picks the manifest's default.

        Raises:
            ModelMissing: a file is absent; the message names it and the fix command.
            ModelCorrupt: a file's sha256 differs from the manifest.
        """
        entry = self.manifest.entry(model, precision)
        for file in entry.files:
            self._verify(entry, file)
        return self.file_path(entry, entry.graph_file)

    def status(self, verify: bool = True) -> list[FileStatus]:
        """The state of every manifest file in this store.

        Args:
            verify: Hash present files (``verified``/``corrupt``); otherwise only
                check that they exist (``present``).
        """
        rows = []
        for entry in self.manifest.models:
            for file in entry.files:
                try:
                    path = self.file_path(entry, file)
                except ModelMissing:
                    path = Path(file.package_path)
                state: FileState
                if not path.is_file():
                    state = "missing"
                elif not verify:
                    state = "present"
                else:
                    state = "verified" if self._matches(path, file) else "corrupt"
                rows.append(
                    FileStatus(entry.name, entry.precision, file.name, path, state, file.size)
                )
        return rows

    def _matches(self, path: Path, file: ManifestFile) -> bool:
        stat = path.stat()
        key = (path, stat.st_size, stat.st_mtime_ns)
        if key in self._verified:
            return True
        if stat.st_size != file.size or sha256_file(path) != file.sha256:
            return False
        self._verified.add(key)
        return True

    def _verify(self, entry: ModelEntry, file: ManifestFile) -> None:
        path = self.file_path(entry, file)
        if not path.is_file():
            raise ModelMissing(
                f"model file {path} ({entry.key}) is missing; fetch it with: "
                f"{pull_command(self.root)} --model {entry.name}"
            )
        if self._matches(path, file):
            return
        actual = sha256_file(path)
        fix = (
            f"reinstall {entry.package}=={entry.package_version}"
            if entry.source == "pypi"
            else f"delete it and run: {pull_command(self.root)} --model {entry.name}"
        )
        raise ModelCorrupt(
            f"model file {path} ({entry.key}) failed verification: expected sha256 "
            f"{file.sha256} ({file.size} bytes), got {actual} ({path.stat().st_size} bytes); "
            f"{fix}"
        )
