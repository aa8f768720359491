// Transport rules of the reporter: batching, size cap, retries, queue bound, unload path.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createReporterWith, type Reporter } from "../src/reporter";
import { BACKOFF_BASE_MS, BACKOFF_CAP_MS, backoffMs, MAX_BEACON_BYTES, parseRetryAfter } from "../src/transport";
import type { ReporterOptions } from "../src/types";
import { type Answer, fakeBrowser } from "./fake";

const OPTS: ReporterOptions = { collector: "https://c.example", key: "k-0123456789", region: "eu-west-1", flushIntervalMs: 1000 };

function setup(answers: Answer[] = [], opts: Partial<ReporterOptions> = {}, browser: Parameters<typeof fakeBrowser>[1] = {}) {
  const b = fakeBrowser(answers, browser);
  const slo = createReporterWith(b.env, { ...OPTS, ...opts });
  return { ...b, slo };
}

function interactions(slo: Reporter, names: string[]): void {
  for (const name of names) slo.interaction(name)();
}

const range = (n: number, prefix = "i"): string[] => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("batching", () => {
  it("holds events until the flush interval, then sends them in one beacon", async () => {
    const { slo, sent, names } = setup();
    interactions(slo, ["a", "b", "c"]);
    await vi.advanceTimersByTimeAsync(999);
    expect(sent).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(names()).toEqual([["a", "b", "c"]]);
    expect(sent[0]?.beacon).toMatchObject({ v: 1, seq: 0, region: "eu-west-1", kind: "rum", sdk: "web/0.1.0" });
  });

  it("sends a full batch at once, one beacon in flight at a time, the rest at the interval", async () => {
    const { slo, sent, names } = setup([], { maxBatchEvents: 4 });
    interactions(slo, range(10));
    await vi.advanceTimersByTimeAsync(0);
    expect(names()).toEqual([range(4), range(8).slice(4)]);
    expect(sent.map((s) => s.beacon.seq)).toEqual([0, 1]);
    await vi.advanceTimersByTimeAsync(1000);
    expect(names()[2]).toEqual(["i8", "i9"]);
  });

  it("posts text/plain with the key in the query and keepalive (a CORS-simple request)", async () => {
    const { slo, env, sent } = setup();
    const spy = vi.spyOn(env, "fetch");
    slo.error("E1");
    await slo.flush();
    expect(sent[0]?.url).toBe("https://c.example/v1/beacons?key=k-0123456789");
    expect(spy.mock.calls[0]?.[1]).toMatchObject({ method: "POST", keepalive: true, headers: { "content-type": "text/plain" } });
  });
});

describe("size cap", () => {
  it("splits 500 long events into beacons each under 60 KB, losing none", async () => {
    const { slo, sent } = setup([], { maxBatchEvents: 500 });
    const long = "x".repeat(60);
    for (let i = 0; i < 500; i++) slo.error(`${long}${String(i).padStart(4, "0")}`, { name: long });
    await slo.flush();
    await vi.advanceTimersByTimeAsync(0);
    expect(sent.length).toBeGreaterThan(1);
    for (const s of sent) expect(s.bytes).toBeLessThan(MAX_BEACON_BYTES);
    const codes = sent.flatMap((s) => s.beacon.events.map((e) => e.code));
    expect(codes).toHaveLength(500);
    expect(new Set(codes).size).toBe(500);
  });
});

describe("backoff", () => {
  it.each([
    { retry: 0, random: 0, retryAfter: 0, want: 0 },
    { retry: 0, random: 0.999999, retryAfter: 0, want: BACKOFF_BASE_MS * 0.999999 },
    { retry: 3, random: 0.5, retryAfter: 0, want: 4 * BACKOFF_BASE_MS },
    { retry: 20, random: 1, retryAfter: 0, want: BACKOFF_CAP_MS },
    { retry: 0, random: 0.1, retryAfter: 5000, want: 5000 },
    { retry: 6, random: 1, retryAfter: 5000, want: Math.min(BACKOFF_CAP_MS, 64 * BACKOFF_BASE_MS) },
  ])("retry $retry with draw $random and Retry-After $retryAfter ms waits $want ms", ({ retry, random, retryAfter, want }) => {
    expect(backoffMs(retry, random, retryAfter)).toBeCloseTo(want, 6);
  });

  it("keeps every full-jitter delay within [Retry-After, max(Retry-After, min(cap, base·2^n))]", () => {
    for (let retry = 0; retry < 12; retry++) {
      for (const random of [0, 0.25, 0.5, 0.75, 0.999]) {
        for (const ra of [0, 2000]) {
          const d = backoffMs(retry, random, ra);
          expect(d).toBeGreaterThanOrEqual(ra);
          expect(d).toBeLessThanOrEqual(Math.max(ra, Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** retry)));
        }
      }
    }
  });

  it("retries network errors after the jittered delays, doubling each time", async () => {
    const { slo, sent } = setup(["network-error", "network-error", "network-error"]);
    slo.error("E1");
    await slo.flush();
    await vi.advanceTimersByTimeAsync(10_000);
    // random = 0.5: 0.5 s, 1 s, 2 s after each failure
    expect(sent.map((s) => s.at)).toEqual([0, 500, 1500, 3500]);
    expect(slo.stats()).toMatchObject({ sent: 1, retries: 3 });
  });

  it.each([
    { status: 503, header: "3", want: 3000 },
    { status: 429, header: "7", want: 7000 },
    { status: 503, header: "Thu, 01 Jan 1970 00:00:04 GMT", want: 4000 },
  ])("honours Retry-After $header on a $status: no retry before it, one right after", async ({ status, header, want }) => {
    vi.setSystemTime(0);
    const { slo, sent } = setup([{ status, retryAfter: header }], {}, { random: () => 0.01 });
    slo.error("E1");
    await slo.flush();
    await vi.advanceTimersByTimeAsync(want - 1);
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toHaveLength(2);
  });

  it("retries even when the timer fires a hair before performance.now() reaches the retry time", async () => {
    const { slo, sent, env } = setup([{ status: 503, retryAfter: "1" }]);
    const t0 = Date.now();
    env.now = () => (Date.now() - t0) * 0.999; // the monotonic clock runs a little behind the timers
    slo.error("E1");
    await slo.flush();
    await vi.advanceTimersByTimeAsync(1000);
    expect(sent.map((s) => s.beacon.seq)).toEqual([0, 0]);
  });

  it("a flush during the backoff does not send early", async () => {
    const { slo, sent } = setup([{ status: 503, retryAfter: "5" }]);
    slo.error("E1");
    await slo.flush();
    slo.error("E2");
    await slo.flush();
    expect(sent).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(5000);
    expect(sent.map((s) => s.beacon.seq)).toEqual([0, 0, 1]);
  });

  it.each([
    { retryAfter: "", want: 0 },
    { retryAfter: "2", want: 2000 },
    { retryAfter: "0.5", want: 500 },
    { retryAfter: "soon", want: 0 },
  ])("reads Retry-After '$retryAfter' as $want ms", ({ retryAfter, want }) => {
    expect(parseRetryAfter(retryAfter || null, 0)).toBe(want);
  });
});

describe("retries reuse the beacon's identity", () => {
  it("resends the same (session_id, seq, events) with a fresh sent_at; the next beacon gets seq + 1", async () => {
    const { slo, sent } = setup([{ status: 503, retryAfter: "1" }, "network-error"]);
    interactions(slo, ["a", "b"]);
    await slo.flush();
    await vi.advanceTimersByTimeAsync(5000);
    expect(sent).toHaveLength(3);
    const [first, ...retries] = sent.map((s) => s.beacon);
    for (const r of retries) {
      expect(r.session_id).toBe(first?.session_id);
      expect(r.seq).toBe(first?.seq);
      expect(r.events).toEqual(first?.events);
    }
    const sentAt = sent.map((s) => s.beacon.sent_at);
    expect(new Set(sentAt).size).toBe(3);
    expect(sentAt[1]! - sentAt[0]!).toBeGreaterThanOrEqual(1);
    slo.error("E1");
    await slo.flush();
    expect(sent[3]?.beacon.seq).toBe(first!.seq + 1);
  });
});

describe("refusals and limits", () => {
  it.each([400, 401, 413, 415, 422])("drops and counts a beacon refused with %i, then carries on", async (status) => {
    const { slo, sent } = setup([{ status }]);
    interactions(slo, ["a", "b"]);
    await slo.flush();
    slo.error("E1");
    await slo.flush();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sent.map((s) => s.beacon.seq)).toEqual([0, 1]);
    expect(slo.stats()).toMatchObject({ droppedRefused: 2, sent: 1, retries: 0 });
  });

  it.each([408, 429, 500, 502, 503, 504])("retries a beacon answered %i", async (status) => {
    const { slo, sent } = setup([{ status }]);
    slo.error("E1");
    await slo.flush();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(sent.map((s) => s.beacon.seq)).toEqual([0, 0]);
  });

  it("drops a beacon after maxAttempts failures, counted", async () => {
    const { slo, sent } = setup(Array(5).fill({ status: 503 }), { maxAttempts: 3 });
    interactions(slo, ["a", "b"]);
    await slo.flush();
    await vi.advanceTimersByTimeAsync(600_000);
    expect(sent).toHaveLength(3);
    expect(slo.stats().droppedExhausted).toBe(2);
  });

  it("keeps a bounded queue: the oldest events go first, the beacon in flight stays whole", async () => {
    const { slo, sent, names, hide } = setup(["hang"], { maxQueueEvents: 6, maxBatchEvents: 3 });
    interactions(slo, range(3)); // batch 0 goes in flight and hangs
    await vi.advanceTimersByTimeAsync(0);
    interactions(slo, range(7, "q"));
    void slo.flush(); // waits behind the hanging send
    expect(slo.stats().droppedOverflow).toBe(4);
    expect(names()).toEqual([range(3)]);
    // what is left: the in-flight three plus the newest three
    hide();
    expect(sent.slice(1).flatMap((s) => s.beacon.events.map((e) => e.name))).toEqual(["i0", "i1", "i2", "q4", "q5", "q6"]);
  });
});

describe("unload path", () => {
  it("on page hide sends everything by sendBeacon as text/plain with the key in the query", async () => {
    const { slo, sent, hide } = setup();
    interactions(slo, ["a", "b"]);
    hide();
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({ via: "beacon", url: "https://c.example/v1/beacons?key=k-0123456789" });
    expect(sent[0]?.contentType).toMatch(/^text\/plain/);
    expect(sent[0]?.beacon.events.map((e) => e.name)).toEqual(["a", "b"]);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sent).toHaveLength(1); // nothing left for the timer
  });

  it("resends the beacon in flight (same seq, so it counts once) and those waiting for a retry", async () => {
    const { slo, sent, hide } = setup(["hang"], { maxBatchEvents: 2 });
    interactions(slo, ["a", "b", "c"]);
    await vi.advanceTimersByTimeAsync(0);
    hide();
    expect(sent.map((s) => [s.via, s.beacon.seq])).toEqual([["fetch", 0], ["beacon", 0], ["beacon", 1]]);
  });

  it("a send that fails after its beacon left by sendBeacon does not hold back the next one", async () => {
    let fail: (e: Error) => void = () => undefined;
    const b = fakeBrowser();
    const fetch = b.env.fetch;
    let calls = 0;
    b.env.fetch = (url, init) => (calls++ === 0 ? (fetch(url, init), new Promise((_, rej) => (fail = rej))) : fetch(url, init));
    const slo = createReporterWith(b.env, OPTS);
    slo.error("E1");
    void slo.flush();
    b.hide(); // page hidden, then visible again
    fail(new TypeError("Failed to fetch"));
    slo.error("E2");
    await slo.flush();
    await vi.advanceTimersByTimeAsync(0);
    expect(b.sent.map((s) => [s.via, s.beacon.seq])).toEqual([["fetch", 0], ["beacon", 0], ["fetch", 1]]);
    expect(slo.stats().retries).toBe(0);
  });

  it("keeps beacons sendBeacon refused (quota full) and sends them later", async () => {
    const { slo, sent, hide } = setup([], {}, { beaconOk: false });
    slo.error("E1");
    hide();
    expect(sent).toHaveLength(0);
    await slo.flush();
    expect(sent.map((s) => s.via)).toEqual(["fetch"]);
  });
});

describe("sampling", () => {
  it.each([
    { draw: 0.29, rate: 0.3, sampled: true },
    { draw: 0.3, rate: 0.3, sampled: false },
    { draw: 0.0, rate: 0, sampled: false },
    { draw: 0.999, rate: 1, sampled: true },
  ])("a session drawing $draw at rate $rate is sampled: $sampled", async ({ draw, rate, sampled }) => {
    const draws = [draw, 0.5, 0.5, 0.5];
    const { slo, sent } = setup([], { sampleRate: rate }, { random: () => draws.shift() ?? 0.5 });
    expect(slo.sampled).toBe(sampled);
    // later draws (jitter) never change the decision: all events or none
    for (let i = 0; i < 5; i++) slo.error(`E${i}`);
    slo.interaction("x")();
    await slo.flush();
    expect(sent.flatMap((s) => s.beacon.events)).toHaveLength(sampled ? 6 : 0);
  });
});
