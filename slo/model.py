"""The SLO domain model: what every generator, engine and adapter works from.

The versioned YAML spec (``slo/spec.py``) is validated and mapped into these
frozen dataclasses once; nothing downstream sees YAML. Durations are seconds,
latencies are seconds, ratios are fractions. A field's default here is the
spec's default for it: ``slo/spec.py`` reads optional fields' defaults from
these dataclasses and repeats none.

Vocabulary:

- an **SLI** is a measured stream per region, of one kind (:func:`sli_kind`):
  a latency (``ttff``, ``interaction_rtt``, ``live_latency``), a ratio of
  events (``errors``: fatal errors / playback attempts; ``exits_before_start``:
  exits before the first frame / playback attempts) or a ratio of time
  (``rebuffering``: stall seconds / (stall + played seconds));
- an **SLO** is one objective on one SLI, e.g. ``ttff-p95``: "95 % of first
  frames within 200 ms"; its **budget** is the allowed bad fraction (5 %);
- a **tier** is one multiwindow burn-rate alert (long window, short window,
  burn factor, severity), applied to every SLO;
- a **trigger** is an operational signal on the live quantiles ("p95 above
  200 ms for 2 minutes: scale out");
- the optional **dimension** is one extra label (``cdn``, ``platform``) with an
  allow-list, kept on the series of the SLIs that opt in.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from slo import conventions as c

# A tier whose factor x budget reaches 1 can never fire (the SLI error ratio
# cannot exceed 1). Such tiers are adapted to this fraction of the maximum
# possible burn rate, and the adaptation is reported.
ADAPTED_FACTOR_HEADROOM = 0.9


def sli_kind(sli: str) -> str:
    """The kind of ``sli``: ``conventions.SLI_KIND_LATENCY``, ``_RATIO`` or ``_TIME_RATIO``.

    >>> sli_kind("rebuffering"), sli_kind("errors"), sli_kind("live_latency")
    ('time_ratio', 'ratio', 'latency')
    """
    if sli in c.LATENCY_SLIS:
        return c.SLI_KIND_LATENCY
    if sli in c.RATIO_SLIS:
        return c.SLI_KIND_RATIO
    if sli in c.TIME_RATIO_SLIS:
        return c.SLI_KIND_TIME_RATIO
    raise ValueError(f"unknown SLI {sli!r}")


@dataclass(frozen=True)
class Tier:
    """One multiwindow multi-burn-rate alert tier (SRE Workbook ch. 5)."""

    name: str
    long_s: float
    short_s: float
    factor: float
    severity: str
    for_s: float = 0.0


@dataclass(frozen=True)
class ResolvedTier:
    """A tier as applied to one SLO: the factor may have been adapted down."""

    tier: Tier
    factor: float
    adapted: bool

    @property
    def name(self) -> str:
        return self.tier.name


@dataclass(frozen=True)
class SLO:
    """One objective on one SLI in every region."""

    name: str
    sli: str
    budget: float
    quantile: float | None = None
    threshold_s: float | None = None
    description: str = ""
    # "" = each tier alerts with its own severity; "ticket" = every alert of
    # this SLO is a ticket, never a page (a signal worth watching, not waking for).
    max_severity: str = ""

    @property
    def is_latency(self) -> bool:
        return self.threshold_s is not None

    @property
    def kind(self) -> str:
        """The kind of this SLO's SLI (:func:`sli_kind`)."""
        return sli_kind(self.sli)

    def severity_of(self, tier: Tier) -> str:
        """The severity of ``tier``'s alert for this SLO, capped by ``max_severity``."""
        if self.max_severity == c.SEVERITY_TICKET:
            return c.SEVERITY_TICKET
        return tier.severity

    @property
    def objective(self) -> float:
        """The good-event ratio promised (0.95 for a p95 objective)."""
        return 1.0 - self.budget

    @property
    def max_burn_rate(self) -> float:
        """Burn rate when every event is bad: 1 / budget."""
        return 1.0 / self.budget


@dataclass(frozen=True)
class Condition:
    """One clause of a trigger: a live quantile of a latency SLI, or a ratio SLI's ratio, above a limit."""

    sli: str
    quantile: float | None = None
    above_s: float | None = None
    above_ratio: float | None = None


# What a region's health reports while a trigger has no usable data (fewer
# than ``min_events`` in the window, or no partial for ``stale_after_s``).
NO_DATA_HEALTHY = "healthy"
NO_DATA_UNHEALTHY = "unhealthy"
NO_DATA_LAST_KNOWN = "last_known"
NO_DATA_POLICIES = (NO_DATA_HEALTHY, NO_DATA_UNHEALTHY, NO_DATA_LAST_KNOWN)

# Where a trigger's signal goes (``Target.kind``).
TARGET_HPA = "hpa"  # also written as an equivalent KEDA ScaledObject
TARGET_ROUTE53 = "route53"
TARGET_KINDS = (TARGET_HPA, TARGET_ROUTE53)


@dataclass(frozen=True)
class Target:
    """One control-plane object a trigger drives, per region.

    ``hpa``: scale ``workload`` (a Deployment) in ``namespace``
    between ``min_replicas`` and ``max_replicas``. ``route53``: a health check
    on ``https://<fqdn><health path>``. ``{region}`` in ``workload``,
    ``namespace`` and ``fqdn`` is replaced by the region name.
    """

    kind: str
    workload: str = ""
    namespace: str = "default"
    min_replicas: int = 2
    max_replicas: int = 20
    fqdn: str = ""

    def for_region(self, template: str, region: str) -> str:
        """``template`` (one of this target's fields) with ``{region}`` filled in."""
        return template.replace("{region}", region)


@dataclass(frozen=True)
class Trigger:
    """An operational trigger: any condition true for ``for_s`` seconds.

    A region is *breached* once the condition has held ``for_s`` and healthy
    again once it has been clear ``recover_for_s`` (hysteresis); with no
    usable data it reports what ``on_no_data`` says (``slo/health.py``).
    """

    name: str
    conditions: tuple[Condition, ...]
    action: str = ""
    for_s: float = 0.0
    window_s: float = 60.0
    min_events: int = 0
    recover_for_s: float = 0.0
    on_no_data: str = NO_DATA_HEALTHY
    stale_after_s: float = 60.0
    severity: str = c.SEVERITY_TICKET
    alert: str = ""
    targets: tuple[Target, ...] = ()
    runbook: str = ""  # docs/runbooks.md anchor; "" derives it from the targets (alerts/alerting.py)

    def targets_of(self, kind: str) -> tuple[Target, ...]:
        """The targets of one kind (``TARGET_HPA`` ...), in spec order."""
        return tuple(t for t in self.targets if t.kind == kind)


# A dimension multiplies the series of every SLI that opts in by its values
# (+ other): 16 keeps regions x values x SLIs within the stage-2 memory budget.
MAX_DIMENSION_VALUES = 16


@dataclass(frozen=True)
class Dimension:
    """One optional extra label, e.g. ``cdn``, carried by beacons and kept on the opted-in SLIs.

    Reported values outside ``values`` become ``other`` (as regions do), so
    every opted-in SLI has at most regions x (values + 1) series per kind.
    """

    name: str
    values: tuple[str, ...]
    slis: tuple[str, ...]

    @property
    def labels(self) -> tuple[str, ...]:
        """Every value the label can take: the allow-list plus ``other``."""
        return (*self.values, c.REGION_OTHER)

    def map(self, value: str | None) -> str:
        """The label value for a reported ``value``: itself if allow-listed, else ``other``."""
        return value if value is not None and value in self.values else c.REGION_OTHER


@dataclass(frozen=True)
class Spec:
    """A validated SLO spec."""

    name: str
    period_s: float
    regions: tuple[str, ...]
    tiers: tuple[Tier, ...]
    slos: tuple[SLO, ...]
    triggers: tuple[Trigger, ...] = ()
    evaluate_kind: str = c.KIND_RUM
    low_traffic_min_events: int = 0
    quantile_windows_s: tuple[float, ...] = (60.0, 300.0, 3600.0)
    pane_s: float = 2.0
    allowed_lateness_s: float = 10.0
    source: str = "<memory>"
    extra_histogram_buckets_s: tuple[float, ...] = field(
        default=(0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
    )
    dimension: Dimension | None = None

    @property
    def region_labels(self) -> tuple[str, ...]:
        """Every value the region label can take: the allow-list plus ``other``."""
        return (*self.regions, c.REGION_OTHER)

    @property
    def latency_slis(self) -> tuple[str, ...]:
        return tuple(sorted({s.sli for s in self.slos if s.is_latency}))

    def splits(self, sli: str) -> bool:
        """True when ``sli``'s series carry the dimension label (it opted in)."""
        return self.dimension is not None and sli in self.dimension.slis

    @property
    def thresholds_s(self) -> tuple[float, ...]:
        """Every latency threshold in the spec (SLOs and triggers), sorted."""
        values = {s.threshold_s for s in self.slos if s.threshold_s is not None}
        values |= {
            cond.above_s for t in self.triggers for cond in t.conditions if cond.above_s is not None
        }
        return tuple(sorted(values))

    @property
    def histogram_buckets_s(self) -> tuple[float, ...]:
        """Histogram bucket edges: defaults plus every threshold, so bad counts are exact."""
        return tuple(sorted(set(self.extra_histogram_buckets_s) | set(self.thresholds_s)))

    @property
    def alert_windows_s(self) -> tuple[float, ...]:
        """Every window a burn-rate rule needs: tier windows and the period, sorted."""
        windows = {t.long_s for t in self.tiers} | {t.short_s for t in self.tiers}
        return tuple(sorted(windows | {self.period_s}))

    @property
    def stream_windows_s(self) -> tuple[float, ...]:
        """Rolling windows the stream engine keeps: tier windows and quantile windows."""
        windows = {t.long_s for t in self.tiers} | {t.short_s for t in self.tiers}
        windows |= set(self.quantile_windows_s) | {t.window_s for t in self.triggers}
        return tuple(sorted(windows))

    def slo(self, name: str) -> SLO:
        for s in self.slos:
            if s.name == name:
                return s
        raise KeyError(name)

    def resolved_tiers(self, slo: SLO) -> tuple[ResolvedTier, ...]:
        """The tiers as they apply to ``slo``, factors adapted where they could never fire."""
        return tuple(resolve_tier(t, slo) for t in self.tiers)


def resolve_tier(tier: Tier, slo: SLO) -> ResolvedTier:
    """Adapt ``tier`` to ``slo`` so that it can fire.

    The SLI error ratio is at most 1, so the burn rate is at most
    ``1 / budget``. A tier asking for ``factor >= 1 / budget`` is dead (at equality
    it would fire only after a full long window of total outage); it is
    capped at ``ADAPTED_FACTOR_HEADROOM / budget`` (9x for a 10 % budget).
    """
    if tier.factor * slo.budget < 1.0:
        return ResolvedTier(tier=tier, factor=tier.factor, adapted=False)
    capped = round(ADAPTED_FACTOR_HEADROOM * slo.max_burn_rate, 6)
    return ResolvedTier(tier=tier, factor=capped, adapted=True)
