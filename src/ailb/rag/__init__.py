"""Knowledge bases: collections, ingestion and chunking, retrieval, and prompt augmentation."""

from ailb.rag.models import CollectionInfo, DocumentInput, IngestResult, Passage, Retrieval
from ailb.rag.service import RagService

__all__ = ["CollectionInfo", "DocumentInput", "IngestResult", "Passage", "RagService", "Retrieval"]
