"""The real broker used by every Kafka test: it answers clients, and survives kill -9."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from streamslo.testing.kafka import metadata_brokers

pytestmark = pytest.mark.kafka


async def roundtrip(bootstrap: str, topic: str, values: list[bytes], produce: bool = True) -> list[bytes]:
    if produce:
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True)
        await producer.start()
        try:
            for v in values:
                await producer.send_and_wait(topic, v)
        finally:
            await producer.stop()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    got: list[bytes] = []
    try:
        async with asyncio.timeout(30):
            while len(got) < len(values):
                for records in (await consumer.getmany(timeout_ms=500)).values():
                    got += [r.value for r in records]
    finally:
        await consumer.stop()
    return got


def test_session_broker_answers_metadata_and_round_trips_messages(kafka_broker):
    assert metadata_brokers("127.0.0.1", kafka_broker.port) == 1
    values = [f"m{i}".encode() for i in range(5)]
    assert asyncio.run(roundtrip(kafka_broker.bootstrap, "streamslo-test-roundtrip", values)) == values


def test_a_killed_broker_restarts_on_the_same_port_with_its_data(kafka_broker_factory):
    broker = kafka_broker_factory()
    values = [f"v{i}".encode() for i in range(5)]
    asyncio.run(roundtrip(broker.bootstrap, "streamslo-test-restart", values))
    port = broker.port
    broker.kill()
    broker.restart()
    print(f"\nkafka: restart after kill -9 took {broker.startup_s:.1f}s")
    assert broker.port == port
    got = asyncio.run(roundtrip(broker.bootstrap, "streamslo-test-restart", values, produce=False))
    assert got == values
