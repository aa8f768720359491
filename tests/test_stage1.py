"""Stage 1 as a pure function: dedup, event mapping, panes, lateness, cuts, replay determinism."""

from __future__ import annotations

import dataclasses

import msgspec
import numpy as np
import pytest

from slo import conventions as c
from slo import limits
from slo.beacon import Beacon, Event, Rejected, decode_record, encode, encode_record, group_record
from slo.partial import Partial
from slo.sketch import RELATIVE_ACCURACY, LogSketch
from slo.spec import load_spec
from slo.stage1 import Stage1

SPEC, _ = load_spec()
SRC = "beacons/0"
T0 = 1_800_000_000.0  # a pane boundary for 2 s panes


def beacon(seq: int = 0, *events: Event, session: str = "s1", region: str = "eu-west-1",
           kind: str = c.KIND_RUM, received: float = T0 + 1.0) -> Beacon:
    return Beacon(session, seq, region, kind, received, received - 0.1, list(events))


def ff(ms: float | None, t: float = T0 + 0.5) -> Event:
    return Event(c.EVENT_FIRST_FRAME, t, ms)


def inter(ms: float | None, t: float = T0 + 0.5) -> Event:
    return Event(c.EVENT_INTERACTION, t, ms)


def err(fatal: bool = True, t: float = T0 + 0.5) -> Event:
    return Event(c.EVENT_ERROR, t, None, fatal)


def run(beacons: list[Beacon], spec=SPEC, **kw) -> tuple[Stage1, list[Partial]]:
    s1 = Stage1(spec, **kw)
    s1.begin(SRC, -1)
    for offset, b in enumerate(beacons):
        s1.add(b, SRC, offset)
    return s1, s1.flush(SRC)


def by_sli(partials: list[Partial]) -> dict[tuple[str, str, str, float], Partial]:
    return {(p.region, p.sli, p.kind, p.pane_start): p for p in partials}


@pytest.mark.parametrize(
    ("beacons", "want"),
    [
        ([beacon(0, ff(120.0))], {"ttff": 1, "attempts": 1, "errors": 0}),
        ([beacon(0, inter(80.0), inter(90.0))], {"interaction_rtt": 2}),
        ([beacon(0, ff(100.0), err(True))], {"ttff": 1, "attempts": 2, "errors": 1}),
        ([beacon(0, err(False))], {"attempts": 0, "errors": 0}),
        ([beacon(0, ff(None))], {"attempts": 1, "errors": 0}),
        ([beacon(0, inter(None), inter(-5.0))], {}),
        ([beacon(0, ff(100.0)), beacon(0, ff(100.0))], {"ttff": 1, "attempts": 1, "errors": 0}),
        ([beacon(0, ff(100.0)), beacon(1, ff(100.0))], {"ttff": 2, "attempts": 2, "errors": 0}),
    ],
    ids=[
        "a first frame feeds ttff and counts one attempt",
        "interactions feed interaction_rtt only",
        "a fatal error is an attempt and an error",
        "a non-fatal error (a warning) is neither an attempt nor an error",
        "a first frame without a value is still an attempt",
        "interactions without a usable value are ignored",
        "a retried beacon with the same session and seq is counted once",
        "the next seq of the same session is a new beacon",
    ],
)
def test_events_map_onto_slis(beacons, want):
    _, partials = run(beacons)
    got: dict[str, int] = {}
    for p in partials:
        if p.sli == c.SLI_ERRORS:
            got["attempts"] = got.get("attempts", 0) + p.attempts
            got["errors"] = got.get("errors", 0) + p.errors
        else:
            got[p.sli] = got.get(p.sli, 0) + p.count
    assert got == want


def test_latency_partial_has_exact_bucket_counts_and_a_sketch_of_the_values():
    values_ms = [12.0, 50.0, 150.0, 150.1, 200.0, 300.0, 999.0]
    _, partials = run([beacon(0, *(ff(v) for v in values_ms))])
    p = by_sli(partials)[("eu-west-1", c.SLI_TTFF, c.KIND_RUM, T0)]
    values = np.array(values_ms) / 1000.0
    assert p.le_counts == tuple(int((values <= e).sum()) for e in SPEC.histogram_buckets_s)
    assert (p.count, p.min_s, p.max_s) == (7, 0.012, 0.999)
    assert p.sum_s == pytest.approx(values.sum())
    sketch = LogSketch.from_bytes(p.sketch)
    assert sketch.count == 7
    assert sketch.relative_accuracy == RELATIVE_ACCURACY  # stage 2's windows merge only these
    assert sketch.quantile(0.5) == pytest.approx(0.150, rel=0.01)


@pytest.mark.parametrize(
    ("event_times", "panes"),
    [
        ([T0 + 0.1, T0 + 1.9], [T0]),
        ([T0 + 0.1, T0 + 2.0, T0 + 5.9], [T0, T0 + 2.0, T0 + 4.0]),
        ([T0 - 0.1], [T0 - 2.0]),
    ],
    ids=[
        "events within one pane share one partial",
        "events across three panes give three partials",
        "an event just before a boundary belongs to the previous pane",
    ],
)
def test_events_are_split_into_event_time_panes(event_times, panes):
    _, partials = run([beacon(0, *(inter(50.0, t) for t in event_times))])
    assert sorted(p.pane_start for p in partials) == panes
    assert all(p.pane_s == SPEC.pane_s for p in partials)


@pytest.mark.parametrize(
    ("event_t", "received", "late"),
    [
        (T0 + 0.5, T0 + 1.0, 0),
        (T0 + 0.5, T0 + 2.0 + SPEC.allowed_lateness_s - 0.01, 0),
        (T0 + 0.5, T0 + 2.0 + SPEC.allowed_lateness_s + 0.01, 1),
        (T0 + 0.5, T0 + 3600.0, 1),
    ],
    ids=[
        "an event arriving in its own pane is on time",
        "an event arriving just within the allowed lateness is on time",
        "an event arriving just after the allowed lateness is late",
        "an event an hour old is late but still aggregated",
    ],
)
def test_lateness_is_judged_against_the_beacon_receive_time(event_t, received, late):
    s1, partials = run([beacon(0, inter(50.0, event_t), received=received)])
    (p,) = partials
    assert (p.late, p.count, s1.counters.late_events) == (late, 1, late)


def test_regions_outside_the_allow_list_become_other():
    _, partials = run([beacon(0, ff(100.0), region="mars-1")])
    assert {p.region for p in partials} == {c.REGION_OTHER}


def test_flush_covers_offsets_since_the_previous_flush_and_then_advances():
    s1 = Stage1(SPEC)
    s1.begin(SRC, 41)
    s1.add(beacon(0, ff(100.0)), SRC, 42)
    s1.skip(SRC, 43)  # a malformed record still moves hi
    first = s1.flush(SRC)
    assert {(p.lo, p.hi) for p in first} == {(41, 43)}
    assert s1.flush(SRC) == []
    assert s1.pending(SRC) == (43, 43)
    s1.add(beacon(1, ff(100.0)), SRC, 44)
    assert {(p.lo, p.hi) for p in s1.flush(SRC)} == {(43, 44)}


@pytest.mark.parametrize(
    ("dedup_records", "gap", "duplicate"),
    [(10, 5, True), (10, 9, True), (10, 10, False), (10, 50, False)],
    ids=[
        "a retry 5 records later is a duplicate within a 10-record memory",
        "a retry 9 records later is still a duplicate",
        "a retry 10 records later is outside the memory and counted again",
        "a retry far outside the memory is counted again",
    ],
)
def test_duplicate_memory_is_bounded_by_records_not_by_time(dedup_records, gap, duplicate):
    s1 = Stage1(SPEC, dedup_records=dedup_records)
    s1.begin(SRC, -1)
    assert s1.add(beacon(0, ff(1.0), session="retry"), SRC, 0)
    for offset in range(1, gap):
        s1.add(beacon(0, ff(1.0), session=f"other{offset}"), SRC, offset)
    assert s1.add(beacon(0, ff(1.0), session="retry"), SRC, gap) is (not duplicate)


def corpus(n: int, seed: int = 3) -> list[Beacon]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        session = f"s{rng.integers(0, n // 4)}"
        events = [inter(float(v), T0 + float(t)) for v, t in
                  zip(rng.lognormal(4, 0.5, 5), rng.uniform(0, 10, 5), strict=True)]
        out.append(beacon(int(rng.integers(0, 3)), ff(float(rng.uniform(50, 400))), *events,
                          session=session, region=SPEC.regions[i % len(SPEC.regions)]))
    return out


@pytest.mark.parametrize(
    "restart_at", [1, 137, 250, 399],
    ids=["a restart after the first record", "a restart mid-stream",
         "a restart at a cut boundary", "a restart before the last record"],
)
def test_replay_after_restart_reproduces_the_same_partials(restart_at):
    """A new process that primes dedup from earlier records and re-cuts at the same offsets
    produces byte-identical partials: the property stage 2's watermarks rely on."""
    beacons = corpus(400)
    cuts = [100, 250, 399]

    def process(s1: Stage1, start: int) -> list[Partial]:
        out: list[Partial] = []
        for offset in range(start, len(beacons)):
            s1.add(beacons[offset], SRC, offset)
            if offset in cuts:
                out += s1.flush(SRC)
        return out

    original = Stage1(SPEC, dedup_records=64)
    original.begin(SRC, -1)
    want = process(original, 0)
    lo = max(cut for cut in [-1, *cuts] if cut < restart_at)  # last committed cut
    replay = Stage1(SPEC, dedup_records=64)
    replay.begin(SRC, lo)
    for offset in range(max(0, lo + 1 - 64), lo + 1):
        replay.prime(beacons[offset].session_id, beacons[offset].seq, SRC, offset)
    got = process(replay, lo + 1)
    assert got == [p for p in want if p.hi > lo]
    assert original.counters.duplicates > 0


def test_pane_width_comes_from_the_spec():
    spec = dataclasses.replace(SPEC, pane_s=5.0)
    _, partials = run([beacon(0, inter(10.0, T0 + 1.0), inter(10.0, T0 + 4.9))], spec=spec)
    assert [(p.pane_start, p.pane_s, p.count) for p in partials] == [(T0, 5.0, 2)]


@pytest.mark.parametrize(
    ("cut", "want"),
    [
        ([("eu-west-1", T0 + 0.5), ("us-east-1", T0 + 1.5)], {"eu-west-1": T0 + 0.5, "us-east-1": T0 + 1.5}),
        ([("eu-west-1", T0 + 1.9), ("eu-west-1", T0 + 3.0), ("us-east-1", T0 + 0.2)],
         {"eu-west-1": T0 + 3.0, "us-east-1": T0 + 0.2}),
    ],
    ids=["two regions in one cut each carry their own newest event time",
         "every pane of a region carries that region's newest event, not the cut's"],
)
def test_partials_carry_the_newest_event_time_of_their_own_region(cut, want):
    beacons = [beacon(i, inter(50.0, t), session=f"s{i}", region=r, received=T0 + 4.0)
               for i, (r, t) in enumerate(cut)]
    _, partials = run(beacons)
    assert {p.region for p in partials} == set(want)
    for p in partials:
        assert p.max_event_time == want[p.region], (p.region, p.pane_start)
        assert p.max_received_at == T0 + 4.0


# --- hostile input from Kafka: event-time bounds and record decoding --------------------

@pytest.mark.parametrize(
    ("event_t", "reason"),
    [
        (1e300, c.REASON_EVENT_IN_FUTURE),
        (T0 + 1.0 + 86_400.0, c.REASON_EVENT_IN_FUTURE),
        (T0 + 1.0 + 61.0, c.REASON_EVENT_IN_FUTURE),
        (T0 + 1.0 - 3601.0, c.REASON_EVENT_TOO_OLD),
        (-1e300, c.REASON_EVENT_TOO_OLD),
        (float("nan"), c.REASON_EVENT_TOO_OLD),
        (float("inf"), c.REASON_EVENT_IN_FUTURE),
    ],
    ids=[
        "an event at 1e300 is dropped as in the future",
        "an event a day after received_at is dropped as in the future",
        "an event just past the allowed future skew is dropped",
        "an event just older than the allowed age is dropped",
        "an event at -1e300 is dropped as too old",
        "an event at NaN is dropped as too old",
        "an event at infinity is dropped as in the future",
    ],
)
def test_events_outside_the_collectors_time_bounds_are_dropped_and_counted(event_t, reason):
    s1, partials = run([beacon(0, ff(100.0), ff(200.0, t=event_t))])
    (ttff,) = [p for p in partials if p.sli == c.SLI_TTFF]
    assert ttff.count == 1 and ttff.pane_start == T0  # the good event of the beacon stays
    assert s1.counters.dropped_events == {reason: 1}
    assert all(p.max_event_time < T0 + 2.0 for p in partials)


def test_a_far_future_event_cannot_move_the_stage2_window_head():
    from slo.stage2 import Stage2

    now = T0 + 1.0
    stage2 = Stage2(SPEC)
    stage2.advance(now)
    _, partials = run([beacon(0, inter(9_000.0, t=1e300)), beacon(1, inter(50.0), session="s2")])
    for p in partials:
        stage2.apply(p)
    window = stage2.snapshot(now).regions["eu-west-1"].series[(c.SLI_INTERACTION, c.KIND_RUM)]
    assert window.quantiles[60.0][0.5] == pytest.approx(0.05, rel=0.01)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b'{"session_id":"s","seq":1,"x":' + b"[" * 200_000 + b"]" * 200_000 + b"}", c.REASON_INVALID),
        (b'{"events":' + b"[" * 200_000, c.REASON_INVALID),
        (b"[" * 200_000, c.REASON_INVALID),
        (b"x" * (2 << 20), c.REASON_TOO_LARGE),
        (bytes(range(256)) * 4, c.REASON_MALFORMED),
        (b"", c.REASON_MALFORMED),
        (None, c.REASON_MALFORMED),
        (encode(Beacon("s", 1, "eu-west-1", "rum", T0, T0, [Event("error", T0)] * 501)), c.REASON_TOO_MANY_EVENTS),
        (encode(Beacon("s", 1, "eu-west-1", "rum", 1e300, T0, [Event("error", 1e300)])), c.REASON_INVALID),
        (encode(Beacon("s", 1, "eu-west-1", "rum", -1.0, T0, [Event("error", -1.0)])), c.REASON_INVALID),
    ],
    ids=[
        "deeply nested JSON in an unknown field is invalid, not a RecursionError",
        "deeply nested JSON in the events field is invalid",
        "a deeply nested array instead of an object is invalid",
        "a record over the collector's body cap is too large",
        "binary garbage is malformed",
        "an empty value is malformed",
        "a tombstone (no value) is malformed",
        "more events than the collector accepts is too many events",
        "a received_at of 1e300 is invalid",
        "a negative received_at is invalid",
    ],
)
def test_records_the_collector_would_refuse_are_rejected_with_a_reason(value, reason):
    with pytest.raises(Rejected) as exc:
        decode_record(value)
    assert exc.value.reason == reason


@pytest.mark.parametrize("encoder", [encode_record, encode], ids=["as MessagePack", "as JSON"])
def test_a_collector_beacon_decodes_as_a_record(encoder):
    b = beacon(3, ff(120.0), err())
    assert decode_record(encoder(b)) == [b]


def group(*beacons: Beacon) -> bytes:
    """A JSON group record, as collectors before MessagePack wrote it."""
    return b"[" + b",".join(encode(b) for b in beacons) + b"]"


def mp_group(*beacons: Beacon) -> bytes:
    """A group-commit record value, as collector/group_commit.py writes it."""
    return group_record([encode_record(b) for b in beacons])


@pytest.mark.parametrize(("to_record", "n"), [
    pytest.param(mp_group, 5, id="a MessagePack group of 5 (a fixarray)"),
    pytest.param(mp_group, limits.MAX_GROUP_BEACONS, id="a MessagePack group at the limit (an array 16)"),
    pytest.param(group, 5, id="a JSON group of 5"),
])
def test_a_group_commit_record_decodes_to_its_beacons_in_order(to_record, n):
    bs = [beacon(seq, ff(100.0 + seq), session=f"s{seq % 3}") for seq in range(n)]
    assert decode_record(to_record(*bs)) == bs


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param(b"[]", c.REASON_INVALID, id="an empty group is not a record"),
        pytest.param(group(*[beacon(i) for i in range(limits.MAX_GROUP_BEACONS + 1)]), c.REASON_INVALID,
                     id="a group over the beacon limit is rejected"),
        pytest.param(group(beacon(1, ff(1.0)), beacon(2, *[ff(1.0)] * (limits.MAX_EVENTS + 1))),
                     c.REASON_TOO_MANY_EVENTS, id="one beacon over the event limit rejects its whole group"),
        pytest.param(b"[" + encode(beacon(1)) + b',{"session_id": 1}]', c.REASON_INVALID,
                     id="one malformed beacon rejects its whole group"),
        pytest.param(b"[" * 100_000, c.REASON_INVALID, id="deeply nested arrays fail at the first element"),
        pytest.param(b"[" + encode(beacon(1)), c.REASON_MALFORMED, id="a truncated group is malformed"),
        pytest.param(b"\x90", c.REASON_INVALID, id="an empty MessagePack group is not a record"),
        pytest.param(mp_group(*[beacon(i) for i in range(limits.MAX_GROUP_BEACONS + 1)]), c.REASON_INVALID,
                     id="a MessagePack group over the beacon limit is rejected"),
        pytest.param(mp_group(beacon(1, ff(1.0)), beacon(2, *[ff(1.0)] * (limits.MAX_EVENTS + 1))),
                     c.REASON_TOO_MANY_EVENTS, id="one MessagePack beacon over the event limit rejects its group"),
        pytest.param(b"\x92" + encode_record(beacon(1)) + b"\x81\xaasession_id\x01", c.REASON_INVALID,
                     id="one malformed MessagePack beacon rejects its whole group"),
        pytest.param(b"\x91" * 100_000, c.REASON_INVALID, id="deeply nested MessagePack arrays fail at once"),
        pytest.param(mp_group(beacon(1), beacon(2))[:-3], c.REASON_MALFORMED,
                     id="a truncated MessagePack group is malformed"),
        pytest.param(b"\xc1", c.REASON_MALFORMED, id="a byte MessagePack never uses is malformed"),
    ],
)
def test_group_records_are_accepted_or_rejected_whole(value, reason):
    with pytest.raises(Rejected) as exc:
        decode_record(value)
    assert exc.value.reason == reason


def _run(records: list[list[Beacon]]) -> tuple[list[Partial], int, int]:
    s1 = Stage1(SPEC)
    s1.begin(SRC, -1)
    for offset, rec in enumerate(records):
        s1.add_record(rec, SRC, offset)
    parts = s1.flush(SRC)
    return [msgspec.structs.replace(p, lo=0, hi=0) for p in parts], s1.counters.beacons, s1.counters.duplicates


@pytest.mark.parametrize(
    "records",
    [
        pytest.param([[beacon(0, ff(100.0))], [beacon(1, ff(120.0)), beacon(0, ff(100.0))]],
                     id="a retry in a later group is a duplicate"),
        pytest.param([[beacon(0, ff(100.0)), beacon(1, ff(120.0))], [beacon(0, ff(100.0))]],
                     id="a retry of a grouped beacon in a later single record is a duplicate"),
        pytest.param([[beacon(0, ff(100.0)), beacon(1, ff(120.0)), beacon(0, ff(100.0))]],
                     id="a retry in the same group as its original is a duplicate"),
    ],
)
def test_grouping_changes_no_count_and_no_partial(records):
    """The same beacons one per record and grouped: the same partials, counts and duplicates."""
    one_each = [[b] for rec in records for b in rec]
    assert _run(records) == _run(one_each)
    assert _run(records)[1:] == (2, 1)


def test_dedup_memory_stays_bounded_with_group_records():
    s1 = Stage1(SPEC, dedup_records=100)
    s1.begin(SRC, -1)
    for offset in range(1_000):
        s1.add_record([beacon(offset * 5 + i, session=f"s{i}") for i in range(5)], SRC, offset)
    dedup = s1._sources[SRC].dedup
    assert len(dedup.offsets) <= 5 * 100
    assert len(dedup.extra) <= 100


def test_skipped_records_are_counted_by_reason_and_still_advance_the_cut():
    s1 = Stage1(SPEC)
    s1.begin(SRC, -1)
    s1.add(beacon(0, ff(100.0)), SRC, 0)
    s1.skip(SRC, 1, c.REASON_MALFORMED)
    s1.skip(SRC, 2, c.REASON_MALFORMED)
    s1.skip(SRC, 3, c.REASON_TOO_LARGE)
    assert s1.pending(SRC) == (-1, 3)
    assert s1.counters.skipped_records == {c.REASON_MALFORMED: 2, c.REASON_TOO_LARGE: 1}


def test_duplicates_are_counted_when_their_cut_is_flushed_never_for_a_dropped_source():
    """A revoked partition's next owner replays its duplicates: counting at the cut counts them once."""
    retry = [beacon(0, inter(10.0)), beacon(0, inter(10.0))]
    s1 = Stage1(SPEC)
    s1.begin(SRC, -1)
    for offset, b in enumerate(retry):
        s1.add(b, SRC, offset)
    assert s1.counters.duplicates == 0  # not yet: the cut may never be made here
    s1.drop(SRC)  # revoked before its cut
    s1.begin(SRC, -1)  # the next owner re-reads the same records
    for offset, b in enumerate(retry):
        s1.add(b, SRC, offset)
    s1.flush(SRC)
    assert s1.counters.duplicates == 1
