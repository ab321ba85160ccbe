"""``ailb serve --demo``: the gateway in front of a built-in echo model named ``demo``, no provider key needed.

Memory and knowledge bases are switched on and kept in a temporary folder that is removed when the demo
stops; the knowledge base ``demo_docs`` is filled at start-up with the two short documents in ``docs/``.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from ailb.demo.upstream import DEMO_MODEL, EchoUpstream
from ailb.providers.kinds import OPENAI
from ailb.settings import ConfigError, DeploymentConfig, Settings

if TYPE_CHECKING:
    from ailb.bootstrap import Gateway

log = logging.getLogger("ailb.demo")

DEMO_COLLECTION = "demo_docs"
DOCS = Path(__file__).parent / "docs"

__all__ = ["DEMO_COLLECTION", "DEMO_MODEL", "Demo"]


class Demo:
    """The echo upstream, the settings that route ``demo`` to it, and the demo's temporary data folder."""

    def __init__(self, settings: Settings) -> None:
        if settings.deployment(DEMO_MODEL) is not None:
            raise ConfigError("--demo", f"a deployment is already named {DEMO_MODEL!r}")
        self.upstream = EchoUpstream()
        self.folder = Path(tempfile.mkdtemp(prefix="ailb-demo-"))
        deployment = DeploymentConfig(
            name=DEMO_MODEL,
            provider=OPENAI.name,  # the echo upstream speaks the OpenAI protocol
            base_url=self.upstream.base_url,
            api_key=self.upstream.api_key,
            models=(DEMO_MODEL,),
            input_cost_per_1k=0.0,
            output_cost_per_1k=0.0,
        )
        self.settings = replace(
            settings,
            deployments=(*settings.deployments, deployment),
            data_dir=str(self.folder),
            memory=replace(settings.memory, enabled=True, path=str(self.folder / "ailb_memory")),
            rag=replace(settings.rag, enabled=True, path=str(self.folder / "ailb_rag")),
        )

    async def start(self) -> None:
        await self.upstream.start()

    async def seed(self, gateway: Gateway) -> None:
        """Fill the ``demo_docs`` knowledge base (a few chunks: about a second with the local model)."""
        from ailb.rag.files import SourceFile, read_document

        if gateway.rag is None:
            return
        await gateway.rag.ensure_collection(DEMO_COLLECTION, "AILB demo: two short company policies")
        documents = [read_document(SourceFile(path, path.name)) for path in sorted(DOCS.glob("*.md"))]
        result = await gateway.rag.ingest(DEMO_COLLECTION, documents)
        log.info("demo knowledge base %s: %d documents, %d chunks", DEMO_COLLECTION, len(documents), result.chunks)

    async def aclose(self) -> None:
        await self.upstream.aclose()

    def remove_folder(self) -> None:
        """After the gateway has stopped (its stores closed), however it stopped."""
        shutil.rmtree(self.folder, ignore_errors=True)
