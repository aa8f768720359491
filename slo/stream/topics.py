"""Kafka plumbing shared by the stream worker: topic creation, partial bundles, partitioning.

Use :func:`encode_bundle` / :func:`decode_bundle` for ``slo-partials`` message
values: one message carries every partial of one region from one stage-1 cut
(same ``source``, ``lo``, ``hi``), so stage 2 writes its table once per
message. :func:`partition_for` is the producer's partitioner, so stage 2 can
tell which ``slo-partials`` partition (and table partition) owns a region.

Example::

    await ensure_topics("127.0.0.1:9092", beacons=8, partials=4)
    value = encode_bundle(partials)      # key = region.encode()
"""

from __future__ import annotations

import contextlib
import logging

import msgspec
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from aiokafka.partitioner import murmur2

from slo import conventions as c
from slo.partial import Partial

log = logging.getLogger(__name__)

STAGE1_GROUP = f"{c.FAUST_APP_ID}-stage1"
STAGE2_TABLE = "stage2-regions"

_bundle_encoder = msgspec.msgpack.Encoder()
_bundle_decoder = msgspec.msgpack.Decoder(list[Partial])


def encode_bundle(partials: list[Partial]) -> bytes:
    """Serialize the partials of one region from one stage-1 cut (msgpack)."""
    return _bundle_encoder.encode(partials)


def decode_bundle(data: bytes) -> list[Partial]:
    """Parse :func:`encode_bundle` output; raises ``msgspec.DecodeError`` on bad input."""
    return _bundle_decoder.decode(data)


def region_bundles(partials: list[Partial], trace_links: bytes = b"") -> list[tuple[str, list[Partial]]]:
    """One cut's partials grouped into one bundle per region, regions sorted.

    ``trace_links`` go once per bundle, on its first partial: stage 2 links its
    merge span to the union of a bundle's links, so copies on every partial
    would only cost bytes.
    """
    by_region: dict[str, list[Partial]] = {}
    for partial in partials:
        by_region.setdefault(partial.region, []).append(partial)
    bundles = sorted(by_region.items())
    if trace_links:
        for _, bundle in bundles:
            bundle[0] = msgspec.structs.replace(bundle[0], trace_links=trace_links)
    return bundles


# Commit metadata of a cut's first commit: the boundary to re-cut at after a crash.
_CUT_PREFIX = "cut="


def cut_metadata(hi: int) -> str:
    """The metadata committed with ``lo + 1`` before a cut up to ``hi`` is produced."""
    return f"{_CUT_PREFIX}{hi}"


def recorded_cut(metadata: str) -> int | None:
    """The boundary :func:`cut_metadata` recorded, or None (a completed cut commits "")."""
    return int(metadata.removeprefix(_CUT_PREFIX)) if metadata.startswith(_CUT_PREFIX) else None


def partition_for(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (Java and aiokafka) picks for ``key``."""
    return int((murmur2(key) & 0x7FFFFFFF) % partitions)


async def ensure_topics(
    bootstrap: str, *, beacons: int, partials: int, dead_letter: bool = False
) -> dict[str, int]:
    """Create ``beacons`` and ``slo-partials`` (and the dead-letter topic) when missing.

    Returns the partition counts of ``beacons`` and ``slo-partials``.
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, client_id="streamslo-admin")
    await admin.start()
    try:
        wanted = {c.TOPIC_BEACONS: beacons, c.TOPIC_PARTIALS: partials}
        if dead_letter:
            wanted[c.TOPIC_DEAD_LETTER] = 1  # rare, small records: order across sources is moot
        # list_topics, not describe_topics: describing a missing topic makes a
        # broker with auto.create.topics.enable create it with 1 partition.
        existing = set(await admin.list_topics())
        missing = [NewTopic(t, n, 1) for t, n in wanted.items() if t not in existing]
        if missing:
            with contextlib.suppress(TopicAlreadyExistsError):  # another worker won the race
                await admin.create_topics(missing)
            log.info("created topics %s", [t.name for t in missing])
        return await _partition_counts(admin, [c.TOPIC_BEACONS, c.TOPIC_PARTIALS])
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient, topics: list[str]) -> dict[str, int]:
    out: dict[str, int] = {}
    for meta in await admin.describe_topics(topics):
        if meta.get("error_code", 0) == 0 and meta.get("partitions"):
            out[meta["topic"]] = len(meta["partitions"])
    return out
