"""``/metrics`` is a contract: the same traffic renders the same families, samples and values as it did when
every update went through the Prometheus client's own metric objects (the golden files were rendered then)."""

from __future__ import annotations

from tests.unit.observability import exposition_traffic, served_traffic


def test_the_exposition_of_a_fixed_stream_of_events_is_unchanged() -> None:
    text, snapshot = exposition_traffic.exposition()
    assert text + "# snapshot: " + snapshot + "\n" == exposition_traffic.GOLDEN.read_text()


async def test_the_exposition_of_a_served_gateway_is_unchanged() -> None:
    assert await served_traffic.served_exposition() == served_traffic.GOLDEN.read_text()
