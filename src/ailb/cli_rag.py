"""``ailb rag``: ingest files into knowledge bases, list, query and delete them.

Without ``--url`` the commands open the store in ``RAG_PATH`` (or ``CHROMA_HOST``) directly, with the same
settings as the server; stop the gateway first, or use ``--url`` to go through a running one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ailb.rag.client import FileProgress, LocalRag, RagClient, RagClientError, RemoteRag
from ailb.rag.files import collect_files
from ailb.rag.parsing import SUPPORTED_EXTENSIONS
from ailb.settings import load_settings

Handler = Callable[[argparse.Namespace], int]


def add_rag_commands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    rag = subparsers.add_parser("rag", help="manage knowledge bases (RAG collections)")
    commands = rag.add_subparsers(dest="rag_command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", help="go through the gateway at this URL (e.g. http://gateway:8080)")
    common.add_argument("--token", help="admin token for --url (default: $AILB_ADMIN_TOKEN)")
    common.add_argument("--config", help="YAML config file (default: $AILB_CONFIG); without --url only")

    ingest = commands.add_parser(
        "ingest", parents=[common], help="add files and folders (.txt .md .html .pdf) to a collection"
    )
    ingest.add_argument("collection")
    ingest.add_argument("paths", nargs="+", metavar="PATH")
    ingest.add_argument("--description", default="", help="description if the collection is created")
    ingest.set_defaults(func=run_ingest)

    listing = commands.add_parser("list", parents=[common], help="list collections")
    listing.add_argument("--json", action="store_true", help="print JSON")
    listing.set_defaults(func=run_list)

    query = commands.add_parser("query", parents=[common], help="show the passages a question retrieves")
    query.add_argument("collection")
    query.add_argument("text")
    query.add_argument("--top-k", type=int, choices=range(1, 51), metavar="1-50", help="passages to show")
    query.add_argument("--json", action="store_true", help="print JSON")
    query.set_defaults(func=run_query)

    delete = commands.add_parser("delete", parents=[common], help="delete a collection (or one document)")
    delete.add_argument("collection")
    delete.add_argument("--document", metavar="ID", help="delete only this document")
    delete.set_defaults(func=run_delete)


def run_ingest(args: argparse.Namespace) -> int:
    unsupported: list[Path] = []
    try:
        files = collect_files(args.paths, unsupported)
    except (OSError, ValueError) as exc:
        return _fail(str(exc))
    for path in unsupported:
        print(f"skipped {path}: unsupported file type (supported: {', '.join(SUPPORTED_EXTENSIONS)})", file=sys.stderr)
    if not files:
        return _fail("no .txt, .md, .html or .pdf files found in " + ", ".join(args.paths))

    def work(client: RagClient) -> int:
        if client.ensure_collection(args.collection, args.description):
            print(f"created collection {args.collection}", file=sys.stderr)
        with ProgressBar(remote=bool(args.url)) as progress:
            summary = client.ingest(args.collection, files, progress)
        for failure in summary.failures:
            print(f"skipped {failure}", file=sys.stderr)
        documents, chunks = _count(summary.documents, "document"), _count(summary.chunks, "chunk")
        print(f"ingested {documents} ({chunks}) into {args.collection}")
        return 1 if summary.failures else 0

    return _with_client(args, work)


def run_list(args: argparse.Namespace) -> int:
    def work(client: RagClient) -> int:
        collections = client.list_collections()
        if args.json:
            print(json.dumps(collections, indent=2))
        elif not collections:
            print("no collections")
        else:
            width = max(len(c["name"]) for c in collections)
            for c in collections:
                print(f"{c['name']:<{width}}  {c['chunks']:>7} chunks  {c['description']}".rstrip())
        return 0

    return _with_client(args, work)


def run_query(args: argparse.Namespace) -> int:
    def work(client: RagClient) -> int:
        passages = client.query(args.collection, args.text, args.top_k)
        if args.json:
            print(json.dumps(passages, indent=2))
            return 0
        if not passages:
            print("no passages")
        for number, passage in enumerate(passages, start=1):
            print(_describe(number, passage))
        return 0

    return _with_client(args, work)


def run_delete(args: argparse.Namespace) -> int:
    def work(client: RagClient) -> int:
        if args.document:
            removed = client.delete_document(args.collection, args.document)
            print(f"deleted document {args.document} ({removed} chunks) from {args.collection}")
        else:
            client.delete_collection(args.collection)
            print(f"deleted collection {args.collection}")
        return 0

    return _with_client(args, work)


def _with_client(args: argparse.Namespace, work: Callable[[RagClient], int]) -> int:
    try:
        client: RagClient = _open(args)
    except RagClientError as exc:
        return _fail(str(exc))
    try:
        return work(client)
    except RagClientError as exc:
        return _fail(str(exc))
    finally:
        client.close()


def _open(args: argparse.Namespace) -> RagClient:
    if args.url:
        if not args.url.startswith(("http://", "https://")):
            raise RagClientError(f"--url must be an http(s) URL, got {args.url!r}")
        return RemoteRag(args.url, args.token or os.environ.get("AILB_ADMIN_TOKEN", ""))
    settings = load_settings(config_path=args.config)
    where = (
        f"ChromaDB server {settings.chroma_host}:{settings.chroma_port}"
        if settings.chroma_host
        else f"embedded ChromaDB in {Path(settings.rag.path).resolve()}"
    )
    print(f"knowledge-base store: {where}", file=sys.stderr)
    return LocalRag(settings)


class ProgressBar:
    """A tqdm bar on stderr (hidden when stderr is not a terminal): files for --url, else chunks."""

    def __init__(self, remote: bool) -> None:
        from tqdm import tqdm

        self.bar = tqdm(unit="file" if remote else "chunk", file=sys.stderr, disable=None, leave=False)

    def __enter__(self) -> FileProgress:
        def update(done: int, total: int) -> None:
            self.bar.total = total
            self.bar.update(done - self.bar.n)

        return update

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


def _describe(number: int, passage: dict[str, Any]) -> str:
    header = f"[{number}] {passage['score']:.3f}  {passage['document_id']} #{passage['position']}"
    if passage.get("title"):
        header += f"  ({passage['title']})"
    body = textwrap.indent(textwrap.shorten(passage["text"], 400, placeholder=" …"), "    ")
    return f"{header}\n{body}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _fail(message: str) -> int:
    print(f"ailb rag: error: {message}", file=sys.stderr)
    return 1
