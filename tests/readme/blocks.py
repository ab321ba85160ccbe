"""The README's fenced code blocks and the ``<!-- readme-test: … -->`` note above each, saying how it runs.

A note holds a kind and options:

- ``server=NAME``: a command that starts a gateway; it runs in the background until another server is needed;
- ``run`` (optionally ``server=NAME``): a command or Python program run to completion, against that server;
- ``config``: a YAML configuration, checked with ``ailb config check``;
- ``grpcurl server=NAME``: grpcurl commands against that server;
- ``text``: shown text (a prompt, a synopsis), nothing to run;
- ``clone`` (alone or after another kind): one of the two commands the fresh-clone test runs.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

README = Path(__file__).parents[2] / "README.md"
KINDS = ("server", "run", "config", "grpcurl", "text", "clone")
_NOTE = re.compile(r"^\s*<!-- readme-test: (?P<note>[^>]*?) -->\s*$")
_FENCE = re.compile(r"^(?P<indent>\s*)```(?P<language>[\w-]*)\s*$")


@dataclass(frozen=True, slots=True)
class Block:
    line: int  # of the opening fence, 1-based
    language: str
    code: str
    kind: str
    server: str | None
    clone: bool

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.language}, {self.kind})"


class UnannotatedBlock(ValueError):
    pass


def readme_blocks(text: str | None = None) -> list[Block]:
    lines = (README.read_text() if text is None else text).splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None:
            index += 1
            continue
        start = index
        index += 1
        body: list[str] = []
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index])
            index += 1
        index += 1
        note = _NOTE.match(lines[start - 1]) if start > 0 else None
        if note is None:
            raise UnannotatedBlock(f"README.md:{start + 1}: a code block without a <!-- readme-test: … --> note")
        code = textwrap.dedent("\n".join(body)) + "\n"
        blocks.append(_block(start + 1, fence.group("language"), code, note.group("note").split()))
    return blocks


def _block(line: int, language: str, code: str, words: list[str]) -> Block:
    options = dict(word.partition("=")[::2] for word in words)
    kind = words[0].partition("=")[0] if words else ""
    if kind not in KINDS or set(options) - {*KINDS}:
        raise UnannotatedBlock(f"README.md:{line}: unknown readme-test note {' '.join(words)!r}")
    server = options.get("server") or None
    if kind == "server" and server is None:
        raise UnannotatedBlock(f"README.md:{line}: a server block needs a name (server=NAME)")
    return Block(line, language, code, kind, server, "clone" in options)
