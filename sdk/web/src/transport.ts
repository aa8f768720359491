/**
 * The beacon queue: batching, the 60 KB cap, retries with backoff, the unload path.
 *
 * Use it through the reporter; tests drive it with a fake {@link Env}.
 * Events wait in `buffer`; `cut()` turns them into beacons (`pending`), each
 * with its own `seq` for good: a retry resends the same `(session_id, seq)`,
 * so the collector counts it once. One send is in flight at a time, in order.
 *
 *     const q = new Transport(env, cfg, "sess-1");
 *     q.add({ type: "interaction", ts: 1.7e9, value_ms: 42 });
 *     await q.flush();
 */

import type { Env, Stats, WireBeacon, WireEvent } from "./types";

/** Largest beacon body in bytes: under sendBeacon's 64 KiB keepalive quota. */
export const MAX_BEACON_BYTES = 60_000;
/** The collector refuses beacons with more events. */
export const MAX_EVENTS = 500;
/** The collector refuses a beacon with a `value_ms` over 10 minutes. */
export const MAX_VALUE_MS = 600_000;
export const BACKOFF_BASE_MS = 1_000;
export const BACKOFF_CAP_MS = 60_000;

export interface TransportConfig {
  url: string;
  region: string;
  sdk: string;
  /** Sent as the beacons' `dimensions` unless empty. */
  dimensions: Record<string, string>;
  flushIntervalMs: number;
  maxBatchEvents: number;
  maxQueueEvents: number;
  maxAttempts: number;
}

interface Batch {
  seq: number;
  events: WireEvent[];
  attempts: number;
}

// The envelope's size is measured with the widest seq a session can reach.
const WIDEST_SEQ = 2 ** 53;
const utf8 = new TextEncoder();
const bytes = (s: string): number => utf8.encode(s).length;

/**
 * Full-jitter exponential backoff: uniform in [0, min(cap, base * 2^retry)].
 * A `Retry-After` of `retryAfterMs` is a floor: never sooner than the collector asked.
 */
export function backoffMs(retry: number, random: number, retryAfterMs = 0): number {
  const ceiling = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** retry);
  return Math.max(retryAfterMs, random * ceiling);
}

/** `Retry-After` in ms: delta-seconds or an HTTP date; 0 when absent or unreadable. */
export function parseRetryAfter(value: string | null, wallMs: number): number {
  if (!value) return 0;
  const s = Number(value);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const at = Date.parse(value);
  return Number.isFinite(at) ? Math.max(0, at - wallMs) : 0;
}

const retryable = (status: number): boolean => status === 408 || status === 429 || status >= 500;

export class Transport {
  readonly stats: Stats = {
    sent: 0, retries: 0, droppedOverflow: 0, droppedRefused: 0, droppedExhausted: 0, droppedInvalid: 0,
  };
  private buffer: WireEvent[] = [];
  private pending: Batch[] = [];
  private seq = 0;
  private inflight: Batch | null = null;
  private pumping: Promise<void> | null = null;
  private flushTimer: unknown = null;
  private retryTimer: unknown = null;
  private retryAt = 0;

  constructor(private env: Env, private cfg: TransportConfig, private sessionId: string) {}

  /** Queue one event; sends when the batch is full or the flush interval elapses. */
  add(event: WireEvent): void {
    this.buffer.push(event);
    this.trim();
    if (this.buffer.length >= this.cfg.maxBatchEvents) {
      void this.flush();
    } else if (this.flushTimer === null) {
      this.flushTimer = this.env.setTimeout(() => {
        this.flushTimer = null;
        void this.flush();
      }, this.cfg.flushIntervalMs);
    }
  }

  /** Cut the buffer into beacons and send what the backoff allows now. */
  flush(): Promise<void> {
    this.cut();
    return this.pump();
  }

  /**
   * The page is going away: hand every beacon to `sendBeacon` (text/plain, key in the URL).
   * The in-flight one is sent again too; its `(session_id, seq)` makes that harmless.
   */
  unload(): void {
    this.cut();
    const beacon = this.env.sendBeacon;
    if (!beacon) {
      void this.pump();
      return;
    }
    const kept: Batch[] = [];
    for (const batch of this.pending) {
      // false: the browser's keepalive quota is full; keep it for a later chance.
      if (beacon(this.cfg.url, this.body(batch))) this.stats.sent++;
      else kept.push(batch);
    }
    this.pending = kept;
  }

  /** Stop the timers (the queue is kept, `flush()` still works). */
  stop(): void {
    this.env.clearTimeout(this.flushTimer);
    this.env.clearTimeout(this.retryTimer);
    this.flushTimer = this.retryTimer = null;
  }

  /** Events not yet acknowledged: buffered plus in beacons waiting to be sent. */
  get queued(): number {
    return this.buffer.length + this.pending.reduce((n, b) => n + b.events.length, 0);
  }

  private cut(): void {
    this.env.clearTimeout(this.flushTimer);
    this.flushTimer = null;
    while (this.buffer.length) {
      const events: WireEvent[] = [];
      let size = bytes(this.body({ seq: WIDEST_SEQ, events, attempts: 0 }));
      while (this.buffer.length && events.length < this.cfg.maxBatchEvents) {
        const grow = bytes(JSON.stringify(this.buffer[0])) + 1; // + the comma
        if (events.length && size + grow > MAX_BEACON_BYTES) break;
        events.push(this.buffer.shift() as WireEvent);
        size += grow;
      }
      this.pending.push({ seq: this.seq++, events, attempts: 0 });
    }
  }

  /** Bounded queue: drop the oldest events (not those of the beacon in flight). */
  private trim(): void {
    let over = this.queued - this.cfg.maxQueueEvents;
    while (over > 0) {
      const victim = this.pending.find((b) => b !== this.inflight);
      if (victim) {
        victim.events.shift();
        if (!victim.events.length) this.pending.splice(this.pending.indexOf(victim), 1);
      } else {
        this.buffer.shift();
      }
      this.stats.droppedOverflow++;
      over--;
    }
  }

  private pump(): Promise<void> {
    if (!this.pumping) {
      this.pumping = this.drain().finally(() => {
        this.pumping = null;
      });
    }
    return this.pumping;
  }

  private async drain(): Promise<void> {
    while (this.pending.length && this.env.now() >= this.retryAt) {
      const batch = this.pending[0] as Batch;
      this.inflight = batch;
      const delayMs = await this.send(batch);
      this.inflight = null;
      // unload() may have handed it to sendBeacon (and removed it) meanwhile: then it is done.
      const i = this.pending.indexOf(batch);
      if (i < 0) continue;
      if (delayMs !== null) {
        this.stats.retries++;
        this.scheduleRetry(delayMs);
        return;
      }
      this.pending.splice(i, 1);
    }
  }

  /** One send of `batch`: null when it is done with (acknowledged or dropped), else the retry delay. */
  private async send(batch: Batch): Promise<number | null> {
    batch.attempts++;
    let status = 0;
    let retryAfter = 0;
    try {
      const res = await this.env.fetch(this.cfg.url, {
        method: "POST",
        body: this.body(batch),
        // text/plain and the key in the URL: a CORS-simple request, no preflight.
        headers: { "content-type": "text/plain" },
        keepalive: true,
        credentials: "omit",
      });
      status = res.status;
      if (status === 429 || status === 503) {
        retryAfter = parseRetryAfter(res.headers.get("retry-after"), this.env.wall());
      }
    } catch {
      status = 0; // network error, CORS refusal, offline
    }
    if (status >= 200 && status < 300) {
      this.stats.sent++;
      return null;
    }
    if (status !== 0 && !retryable(status)) {
      this.stats.droppedRefused += batch.events.length;
      return null;
    }
    if (batch.attempts >= this.cfg.maxAttempts) {
      this.stats.droppedExhausted += batch.events.length;
      return null;
    }
    return backoffMs(batch.attempts - 1, this.env.random(), retryAfter);
  }

  private scheduleRetry(delayMs: number): void {
    this.retryAt = this.env.now() + delayMs;
    this.env.clearTimeout(this.retryTimer);
    this.retryTimer = this.env.setTimeout(() => {
      this.retryTimer = null;
      // Timers may fire a hair before performance.now() reaches retryAt: the timer is the authority.
      this.retryAt = 0;
      void this.pump();
    }, delayMs);
  }

  /** The beacon's JSON; `sent_at` is the time of this very send. */
  private body(batch: Batch): string {
    const beacon: WireBeacon = {
      v: 1, session_id: this.sessionId, seq: batch.seq, sent_at: this.env.wall() / 1000,
      region: this.cfg.region, sdk: this.cfg.sdk, kind: "rum", events: batch.events,
    };
    if (Object.keys(this.cfg.dimensions).length) beacon.dimensions = this.cfg.dimensions;
    return JSON.stringify(beacon);
  }
}
