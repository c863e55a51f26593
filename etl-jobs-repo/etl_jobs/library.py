"""The shared job library (`lakejobs/`) zipped for Glue's `--extra-py-files`, byte-for-byte reproducible.

Glue imports `--extra-py-files` zips from their root, so the archive holds the package folder itself
(`lakejobs/__init__.py`, ...). Entry order, timestamps and permissions are fixed: the same sources give
the same bytes, hence the same asset hash, so an unchanged library never shows up as a diff.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path

LIBRARY_DIR = Path(__file__).resolve().parents[1] / "lakejobs"

# The earliest timestamp a zip entry can carry; any fixed value works, this one is conventional.
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)
_SKIPPED_DIRS = {"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}


class LibraryError(ValueError):
    """The job library folder cannot be packaged; the message names the folder."""


def library_files(library_dir: Path) -> list[Path]:
    """Files that go into the zip, sorted: sources and data files, never caches or bytecode."""
    if not (library_dir / "__init__.py").is_file():
        raise LibraryError(f"{library_dir}: the job library must be a Python package (no __init__.py found)")
    return sorted(
        path
        for path in library_dir.rglob("*")
        if path.is_file()
        and path.suffix not in _SKIPPED_SUFFIXES
        and not _SKIPPED_DIRS.intersection(part for part in path.relative_to(library_dir).parts)
    )


def library_zip_bytes(library_dir: Path) -> bytes:
    """The zip archive of `library_dir`, entries under `<package name>/`."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in library_files(library_dir):
            arcname = f"{library_dir.name}/{path.relative_to(library_dir).as_posix()}"
            entry = zipfile.ZipInfo(arcname, date_time=_FIXED_TIME)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, path.read_bytes())
    return buffer.getvalue()


def build_library_zip(library_dir: Path, out_dir: Path) -> Path:
    """Write the zip to `out_dir/<package>-<content hash>.zip` (reused when it already exists)."""
    content = library_zip_bytes(library_dir)
    digest = hashlib.sha256(content).hexdigest()[:16]
    target = out_dir / f"{library_dir.name}-{digest}.zip"
    if not target.exists():
        out_dir.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        partial.write_bytes(content)
        partial.replace(target)
    return target
