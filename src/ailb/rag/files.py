"""Finding and reading the files to ingest from paths given on the command line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ailb.rag.models import DocumentInput, document_id_for
from ailb.rag.parsing import SUPPORTED_EXTENSIONS, is_supported, parse_file


@dataclass(frozen=True, slots=True)
class SourceFile:
    path: Path
    name: str  # the file's path relative to the folder it was found in, or its bare name

    @property
    def document_id(self) -> str:
        return document_id_for(self.name)


def collect_files(paths: list[str], unsupported: list[Path] | None = None) -> list[SourceFile]:
    """Every supported file in ``paths`` (folders are searched recursively, hidden entries skipped); files of
    other types found in folders are appended to ``unsupported``.

    Raises ``FileNotFoundError`` for a missing path and ``ValueError`` for a file of an unsupported type.
    """
    found: dict[Path, SourceFile] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            for file in sorted(path.rglob("*")):
                relative = file.relative_to(path)
                if not file.is_file() or _hidden(relative):
                    continue
                if is_supported(file.name):
                    found.setdefault(file.resolve(), SourceFile(file, relative.as_posix()))
                elif unsupported is not None:
                    unsupported.append(file)
        elif path.is_file():
            if not is_supported(path.name):
                raise ValueError(f"{raw}: unsupported file type (supported: {', '.join(SUPPORTED_EXTENSIONS)})")
            found.setdefault(path.resolve(), SourceFile(path, path.name))
        else:
            raise FileNotFoundError(f"{raw}: no such file or folder")
    return list(found.values())


def read_document(source: SourceFile) -> DocumentInput:
    """Read and parse ``source`` (raises ``OSError`` or ``InvalidRequestError`` for unreadable files)."""
    parsed = parse_file(source.path.name, source.path.read_bytes())
    return DocumentInput(id=source.document_id, text=parsed.text, source=source.name, title=parsed.title)


def _hidden(relative: Path) -> bool:
    return any(part.startswith(".") for part in relative.parts)
