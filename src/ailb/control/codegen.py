"""Regenerates the committed gRPC stubs from ``module_service.proto``.

Run ``python -m ailb.control.codegen`` after changing the proto (needs ``grpcio-tools``, from the ``test``
extra). The stubs are committed, so nobody else ever runs ``protoc``; a test checks that regenerating them
changes nothing.

protoc writes ``from marchproxy import module_service_pb2`` into the service module; the stubs live inside
``ailb.control.generated``, so that import is rewritten to a package-relative one.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

PROTO_PACKAGE = "marchproxy"
PROTO_FILE = Path(__file__).with_name("module_service.proto")
GENERATED_DIR = Path(__file__).with_name("generated")
GENERATED_FILES = ("module_service_pb2.py", "module_service_pb2.pyi", "module_service_pb2_grpc.py")
_ABSOLUTE_IMPORT = f"from {PROTO_PACKAGE} import module_service_pb2 as"
_RELATIVE_IMPORT = "from . import module_service_pb2 as"


def generate(out_dir: Path, proto: Path = PROTO_FILE) -> list[Path]:
    """Compile ``proto`` into ``out_dir``; returns the written files (see ``GENERATED_FILES``)."""
    try:
        from grpc_tools import protoc  # type: ignore[import-untyped]
    except ImportError as exc:
        raise RuntimeError("regenerating the stubs needs grpcio-tools: pip install 'ailb[test]'") from exc

    with tempfile.TemporaryDirectory() as tmp:
        source_root = Path(tmp) / "proto"
        build = Path(tmp) / "build"
        (source_root / PROTO_PACKAGE).mkdir(parents=True)
        build.mkdir()
        shutil.copyfile(proto, source_root / PROTO_PACKAGE / "module_service.proto")
        status = protoc.main(
            [
                "grpc_tools.protoc",
                f"--proto_path={source_root}",
                f"--python_out={build}",
                f"--pyi_out={build}",
                f"--grpc_python_out={build}",
                f"{PROTO_PACKAGE}/module_service.proto",
            ]
        )
        if status != 0:
            raise RuntimeError(f"protoc failed with exit status {status}")
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name in GENERATED_FILES:
            text = (build / PROTO_PACKAGE / name).read_text(encoding="utf-8")
            if name.endswith("_grpc.py"):
                text = _make_import_relative(text)
            target = out_dir / name
            target.write_text(text, encoding="utf-8")
            written.append(target)
    return written


def _make_import_relative(text: str) -> str:
    if _ABSOLUTE_IMPORT not in text:
        raise RuntimeError(f"protoc output changed: {_ABSOLUTE_IMPORT!r} not found in the service module")
    return text.replace(_ABSOLUTE_IMPORT, _RELATIVE_IMPORT)


def main() -> int:
    for path in generate(GENERATED_DIR):
        print(f"wrote {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
