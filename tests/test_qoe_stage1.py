"""Stage 1 on the QoE events (issue 16): what each event and error class counts, exactly, per pane and dimension."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgspec
import pytest

from slo import conventions as c
from slo.beacon import Beacon, Event, decode_record
from slo.limits import MAX_VALUE_MS
from slo.model import Dimension, Spec
from slo.partial import Partial
from slo.spec import load_spec
from slo.stage1 import Stage1

SPEC, _ = load_spec()  # the default spec: no dimension, 2 s panes
QOE_SPEC, _ = load_spec(Path(__file__).parent / "specs" / "qoe.yaml")  # cdn on ttff and rebuffering
SRC = "beacons/0"
T0 = 1_800_000_000.0  # a pane boundary for 1 s and 2 s panes
# The counters of each partial kind; a case lists the non-zero ones as "sli.field".
FIELDS = {
    c.SLI_ERRORS: ("attempts", "errors", "exits", "warnings", "business"),
    c.SLI_REBUFFERING: ("stalls", "stall_s", "played_s"),
    c.SLI_TTFF: ("count", "sum_s"),
    c.SLI_INTERACTION: ("count", "sum_s"),
    c.SLI_LIVE_LATENCY: ("count", "sum_s"),
}


def beacon(*events: Event, seq: int = 0, dim: str = "", received: float = T0 + 1.0) -> Beacon:
    return Beacon("s1", seq, "eu-west-1", c.KIND_RUM, received, received - 0.1, list(events), dim=dim)


def ev(etype: str, value_ms: float | None = None, *, t: float = T0 + 0.5, fatal: bool = False,
       error_class: str = "") -> Event:
    return Event(etype, t, value_ms, fatal, error_class)


def run(*beacons: Beacon, spec: Spec = SPEC) -> tuple[Stage1, list[Partial]]:
    s1 = Stage1(spec)
    s1.begin(SRC, -1)
    for offset, b in enumerate(beacons):
        s1.add(b, SRC, offset)
    return s1, s1.flush(SRC)


def totals(partials: list[Partial]) -> dict[str, float]:
    """The non-zero counters of ``partials``, summed per ``sli.field``."""
    out: dict[str, float] = {}
    for p in partials:
        for name in FIELDS[p.sli]:
            value = getattr(p, name)
            if value:
                out[f"{p.sli}.{name}"] = out.get(f"{p.sli}.{name}", 0) + value
    return out


EVENTS = [
    pytest.param(ev("first_frame", 120.0), {"ttff.count": 1, "ttff.sum_s": 0.12, "errors.attempts": 1},
                 id="a first frame is a ttff value and an attempt"),
    pytest.param(ev("exit_before_start", 3000.0), {"errors.attempts": 1, "errors.exits": 1},
                 id="an exit before start is an attempt and an exit"),
    pytest.param(ev("exit_before_start"), {"errors.attempts": 1, "errors.exits": 1},
                 id="an exit before start without a value still counts"),
    pytest.param(ev("error", error_class="fatal", fatal=True), {"errors.attempts": 1, "errors.errors": 1},
                 id="a fatal error is an attempt and an error"),
    pytest.param(ev("error", error_class="warning"), {"errors.warnings": 1},
                 id="a warning is counted apart: no attempt, no error"),
    pytest.param(ev("error", error_class="business"), {"errors.business": 1},
                 id="a business refusal is counted apart: no attempt, no error"),
    pytest.param(ev("error", error_class="business", fatal=True), {"errors.business": 1},
                 id="a record's class wins over its fatal flag"),
    pytest.param(ev("error", fatal=True), {"errors.attempts": 1, "errors.errors": 1},
                 id="an old fatal-only error (no class) is an attempt and an error, as before"),
    pytest.param(ev("error"), {"errors.warnings": 1}, id="an old non-fatal error (no class) is a warning"),
    pytest.param(ev("stall", 1500.0), {"rebuffering.stalls": 1, "rebuffering.stall_s": 1.5},
                 id="a stall is one episode and its seconds"),
    pytest.param(ev("playing", 10_000.0), {"rebuffering.played_s": 10.0}, id="a playing heartbeat is played seconds"),
    pytest.param(ev("stall", 0.0), {"rebuffering.stalls": 1}, id="a stall of 0 ms is an episode of no time"),
    pytest.param(ev("live_latency", 4200.0), {"live_latency.count": 1, "live_latency.sum_s": 4.2},
                 id="a live latency is a live_latency value"),
]


@pytest.mark.parametrize(("event", "want"), EVENTS)
def test_each_new_event_and_class_counts_where_the_contract_says(event: Event, want: dict[str, float]) -> None:
    s1, partials = run(beacon(event))
    assert totals(partials) == pytest.approx(want)
    assert (s1.counters.events, s1.counters.ignored_events) == (1, 0)


IGNORED = [
    pytest.param(ev("error", error_class="minor"), id="an error of an unknown class"),
    pytest.param(ev("stall"), id="a stall without a value"),
    pytest.param(ev("stall", -1.0), id="a negative stall"),
    pytest.param(ev("stall", float("nan")), id="a NaN stall"),
    pytest.param(ev("playing", MAX_VALUE_MS + 1), id="a heartbeat over the collector's value cap"),
    pytest.param(ev("playing", float("inf")), id="an infinite heartbeat"),
    pytest.param(ev("live_latency"), id="a live latency without a value"),
    pytest.param(ev("live_latency", -5.0), id="a negative live latency"),
    pytest.param(ev("rebuffer", 10.0), id="an unknown event type"),
]


@pytest.mark.parametrize("event", IGNORED)
def test_events_stage1_cannot_use_are_ignored_and_counted(event: Event) -> None:
    s1, partials = run(beacon(event))
    assert partials == []
    assert (s1.counters.events, s1.counters.ignored_events) == (0, 1)


def test_business_refusals_never_reach_attempts_or_errors() -> None:
    refusals = [ev("error", error_class="business", t=T0 + i * 0.01) for i in range(50)]
    _, partials = run(beacon(ev("first_frame", 100.0), *refusals))
    (errors,) = [p for p in partials if p.sli == c.SLI_ERRORS]
    assert (errors.attempts, errors.errors, errors.business) == (1, 0, 50)


def test_stall_and_played_seconds_are_summed_exactly_per_pane() -> None:
    first = beacon(ev("stall", 250.0), ev("playing", 9000.0), ev("stall", 750.0, t=T0 + 2.5), seq=0, received=T0 + 3)
    second = beacon(ev("playing", 1000.0), ev("playing", 4000.0, t=T0 + 3.0), seq=1, received=T0 + 3)
    _, partials = run(first, second)
    panes = {p.pane_start: (p.stalls, p.stall_s, p.played_s) for p in partials if p.sli == c.SLI_REBUFFERING}
    assert panes == {T0: (1, 0.25, 10.0), T0 + 2.0: (1, 0.75, 4.0)}


def test_a_live_latency_partial_is_built_exactly_like_a_ttff_partial() -> None:
    values = [800.0, 2500.0, 4999.0, 5000.0, 5001.0, 12_000.0]
    _, live = run(beacon(*(ev("live_latency", v) for v in values)))
    _, ttff = run(beacon(*(ev("first_frame", v) for v in values)))
    (live_p,) = live
    ttff_p = next(p for p in ttff if p.sli == c.SLI_TTFF)
    assert live_p.sli == c.SLI_LIVE_LATENCY
    assert msgspec.structs.replace(live_p, sli=c.SLI_TTFF) == ttff_p  # le_counts, sketch, sums: identical
    assert live_p.le_counts[list(SPEC.histogram_buckets_s).index(5.0)] == 4  # the 5 s objective counts exactly


def test_an_old_record_without_class_or_dim_counts_as_before() -> None:
    """A Kafka record written before issue 16: 4-element events, no ``dim``."""
    record = (
        b'{"session_id":"s","seq":1,"region":"eu-west-1","kind":"rum","received_at":%.1f,'
        b'"sent_at":%.1f,"events":[["first_frame",%.1f,120.0,false],["error",%.1f,null,true],'
        b'["error",%.1f,null,false],["exit_before_start",%.1f,null,false]],"sdk":"web/1.3"}'
    ) % (T0 + 1, T0 + 1, T0 + 0.5, T0 + 0.5, T0 + 0.5, T0 + 0.5)
    (old,) = decode_record(record)
    assert old.dim == "" and old.events[1].error_class == ""
    _, partials = run(old, spec=QOE_SPEC)
    assert totals(partials) == pytest.approx({
        "ttff.count": 1, "ttff.sum_s": 0.12,
        "errors.attempts": 3, "errors.errors": 1, "errors.warnings": 1, "errors.exits": 1,
    })
    assert {p.dim for p in partials if p.sli == c.SLI_TTFF} == {c.REGION_OTHER}  # the spec splits ttff


ALL_QOE = (ev("first_frame", 100.0), ev("error", error_class="fatal", fatal=True), ev("stall", 500.0),
           ev("playing", 2000.0), ev("live_latency", 3000.0))
OUTCOMES_TOO = Dimension("cdn", ("akamai", "fastly"), (c.SLI_ERRORS, c.SLI_EXITS_BEFORE_START))
DIMS = [
    pytest.param(QOE_SPEC, "fastly", {c.SLI_TTFF: "fastly", c.SLI_REBUFFERING: "fastly"},
                 id="an allow-listed value splits the opted-in SLIs only"),
    pytest.param(QOE_SPEC, "edgio", {c.SLI_TTFF: "other", c.SLI_REBUFFERING: "other"},
                 id="a value outside the allow-list is other"),
    pytest.param(QOE_SPEC, "", {c.SLI_TTFF: "other", c.SLI_REBUFFERING: "other"},
                 id="a beacon without a value is other when the spec has a dimension"),
    pytest.param(SPEC, "fastly", {}, id="without a dimension in the spec nothing splits"),
    pytest.param(dataclasses.replace(SPEC, dimension=OUTCOMES_TOO), "akamai", {c.SLI_ERRORS: "akamai"},
                 id="errors and exits before start split together on the errors partial"),
]


@pytest.mark.parametrize(("spec", "dim", "split"), DIMS)
def test_the_dimension_splits_only_the_slis_that_opt_in(spec: Spec, dim: str, split: dict[str, str]) -> None:
    _, partials = run(beacon(*ALL_QOE, dim=dim), spec=spec)
    assert {p.sli: p.dim for p in partials} == {sli: split.get(sli, "") for sli in FIELDS if sli != c.SLI_INTERACTION}


def test_two_dimension_values_make_two_series_and_unsplit_slis_one() -> None:
    _, partials = run(beacon(*ALL_QOE, dim="fastly"), beacon(*ALL_QOE, seq=1, dim="akamai"), spec=QOE_SPEC)
    series = sorted((p.sli, p.dim) for p in partials)
    assert series == [
        ("errors", ""),
        ("live_latency", ""),
        ("rebuffering", "akamai"), ("rebuffering", "fastly"),
        ("ttff", "akamai"), ("ttff", "fastly"),
    ]
    (errors,) = [p for p in partials if p.sli == c.SLI_ERRORS]
    assert (errors.attempts, errors.errors) == (4, 2)  # both beacons, one unsplit series


def test_lateness_and_event_time_bounds_apply_to_the_new_events() -> None:
    received = T0 + 60.0  # panes before T0 + 60 - lateness (10 s) - one pane are late
    late = [ev("stall", 400.0), ev("error", error_class="business"), ev("live_latency", 900.0)]
    dropped = [ev("playing", 1000.0, t=received + 3600.0), ev("exit_before_start", t=received - 7200.0)]
    s1, partials = run(beacon(*late, *dropped, received=received))
    assert {p.sli: p.late for p in partials} == {c.SLI_REBUFFERING: 1, c.SLI_ERRORS: 1, c.SLI_LIVE_LATENCY: 1}
    assert s1.counters.late_events == 3
    assert s1.counters.dropped_events == {c.REASON_EVENT_IN_FUTURE: 1, c.REASON_EVENT_TOO_OLD: 1}
