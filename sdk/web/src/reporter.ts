/**
 * `createReporter`: the SDK's one entry point; every measurement goes through it.
 *
 * Use one reporter per page (one session). Durations are taken on the
 * monotonic clock (`performance.now()`); event times (`ts`) on the wall
 * clock, which the collector corrects with `sent_at`. No method throws into
 * the host page: a failure inside the SDK is swallowed and the call is a no-op.
 *
 *     const slo = createReporter({ collector: "https://collector.example", key: "k-…", region: "eu-west-1" });
 *     const stop = slo.watchVideo(document.querySelector("video")!, { live: true });
 *     const result = await slo.measure("poll_vote", fetch("/api/vote", { method: "POST" }));
 */

import { browserEnv, newSessionId } from "./env";
import { MAX_EVENTS, MAX_VALUE_MS, Transport } from "./transport";
import type { Env, ErrorClass, EventType, ReporterOptions, Stats, WatchOptions, WireEvent } from "./types";
import { watch, type VideoSink } from "./video";

export const VERSION = "0.1.0";
/** The collector's caps: longer labels, more dimensions or larger values refuse the whole beacon. */
const MAX_LABEL = 64;
const MAX_DIMENSIONS = 8;
const ERROR_CLASSES: readonly string[] = ["fatal", "warning", "business"];

/** Options of `reporter.error(code, options)`. */
export interface ErrorOptions {
  /** `fatal` counts against the SLO, `warning` is only counted, `business` is a refusal (not an attempt). */
  class?: ErrorClass;
  /** The older form: `true` is `class: "fatal"`; without either the class is `warning` (or `business`). */
  fatal?: boolean;
  name?: string;
}

export interface Reporter {
  /** This session's id (the `session_id` of every beacon). */
  readonly sessionId: string;
  /** Whether this session was drawn by `sampleRate`; an unsampled reporter sends nothing. */
  readonly sampled: boolean;
  /** Play attempts, media errors, stalls, played time (and live latency) of `video`; returns the detach. */
  watchVideo(video: HTMLVideoElement, options?: WatchOptions): () => void;
  /** Start an interaction round trip; call the returned function when the answer is shown. */
  interaction(name: string): () => void;
  /** The round trip of `promise`; a rejection also reports a non-fatal error. Resolves like `promise`. */
  measure<T>(name: string, promise: PromiseLike<T>): Promise<T>;
  /** An error event of a class: `fatal` is a failed playback attempt (the errors SLI). */
  error(code: string, options?: ErrorOptions): void;
  /** Send what is buffered now (subject to the retry backoff). */
  flush(): Promise<void>;
  /** Detach everything and send what is left; further calls are no-ops. */
  shutdown(): Promise<void>;
  /** Counts of sent beacons, retries and dropped events. */
  stats(): Stats;
}

const noop = (): void => undefined;

/** Run `fn`; on any exception return `fallback` (the SDK never throws into the page). */
function guard<A extends unknown[], R>(fn: (...args: A) => R, fallback: R): (...args: A) => R {
  return (...args: A): R => {
    try {
      return fn(...args);
    } catch {
      return fallback;
    }
  };
}

/** Ingest URL with the key as `?key=`: `https://c.example` → `https://c.example/v1/beacons?key=…`. */
export function ingestUrl(collector: string, key?: string): string {
  let url = collector.replace(/\/+$/, "");
  if (!/\/v1\/beacons$/.test(url)) url += "/v1/beacons";
  return key ? `${url}${url.includes("?") ? "&" : "?"}key=${encodeURIComponent(key)}` : url;
}

/** A reporter for the real browser. */
export function createReporter(options: ReporterOptions): Reporter {
  return createReporterWith(browserEnv(), options);
}

/** A reporter on a given {@link Env} (the unit tests' fake browser). */
export function createReporterWith(env: Env, options: ReporterOptions): Reporter {
  try {
    return build(env, options);
  } catch {
    return disabled();
  }
}

function build(env: Env, o: ReporterOptions): Reporter {
  if (!o || typeof o.collector !== "string" || typeof o.region !== "string") return disabled();
  const rate = o.sampleRate ?? 1;
  const sessionId = newSessionId(env.random);
  // Drawn once, here: a session reports all of its events or none of them.
  if (!(env.random() < rate)) return disabled(sessionId);
  const dimensions: Record<string, string> = {};
  for (const [name, value] of Object.entries(o.dimensions ?? {}).slice(0, MAX_DIMENSIONS)) {
    if (typeof value === "string") dimensions[name.slice(0, MAX_LABEL)] = value.slice(0, MAX_LABEL);
  }
  const business = new Set(o.businessErrorCodes ?? []);
  const transport = new Transport(env, {
    url: ingestUrl(o.collector, o.key),
    region: o.region.slice(0, MAX_LABEL),
    sdk: (o.sdk ?? `web/${VERSION}`).slice(0, MAX_LABEL),
    dimensions,
    flushIntervalMs: Math.max(0, o.flushIntervalMs ?? 5_000),
    maxBatchEvents: Math.min(MAX_EVENTS, Math.max(1, o.maxBatchEvents ?? 50)),
    maxQueueEvents: Math.max(1, o.maxQueueEvents ?? 1_000),
    maxAttempts: Math.max(1, o.maxAttempts ?? 8),
  }, sessionId);
  const hideHooks = new Set<() => void>();
  const failHooks = new Set<() => void>();
  const detachers = new Set<() => void>();
  let closed = false;

  const record = (type: EventType, fields: Omit<WireEvent, "type" | "ts"> = {}): void => {
    const v = fields.value_ms;
    if (closed || (v !== undefined && !(v >= 0 && v <= MAX_VALUE_MS))) {
      transport.stats.droppedInvalid++;
      return;
    }
    const event: WireEvent = { type, ts: env.wall() / 1000 };
    // Rounded to the microsecond: more digits are noise and bytes.
    if (v !== undefined) event.value_ms = Math.round(v * 1000) / 1000;
    if (fields.name) event.name = String(fields.name).slice(0, MAX_LABEL);
    if (fields.code) event.code = String(fields.code).slice(0, MAX_LABEL);
    if (type === "error") event.class = classOf(fields);
    transport.add(event);
  };
  /** An explicit class wins; then the business codes; then the older `fatal` flag. */
  const classOf = (f: Omit<WireEvent, "type" | "ts">): ErrorClass => {
    const given = f.class;
    return given && ERROR_CLASSES.includes(given) ? given
      : business.has(String(f.code)) ? "business" : f.fatal ? "fatal" : "warning";
  };

  const stopHide = env.onPageHide(guard(() => {
    // Abandoned play attempts are recorded first, then everything goes out by sendBeacon.
    hideHooks.forEach((hook) => guard(hook, undefined)());
    transport.unload();
  }, undefined));

  const sink: VideoSink = {
    now: env.now,
    wall: env.wall,
    setTimeout: env.setTimeout,
    clearTimeout: env.clearTimeout,
    record,
    onHide: (hook) => (hideHooks.add(hook), () => hideHooks.delete(hook)),
    onFail: (hook) => (failHooks.add(hook), () => failHooks.delete(hook)),
    heartbeatMs: Math.min(MAX_VALUE_MS, Math.max(100, o.heartbeatMs ?? 10_000)),
  };

  const interaction = (name: string): (() => void) => {
    const t0 = env.now();
    let done = false;
    return guard(() => {
      if (done) return;
      done = true;
      record("interaction", { value_ms: env.now() - t0, name });
    }, undefined);
  };

  return {
    sessionId,
    sampled: true,
    watchVideo: guard((video: HTMLVideoElement, options?: WatchOptions) => {
      if (closed) return noop;
      const detach = watch(video, sink, options);
      detachers.add(detach);
      return guard(() => {
        detachers.delete(detach);
        detach();
      }, undefined);
    }, noop),
    interaction: guard(interaction, noop),
    measure<T>(name: string, promise: PromiseLike<T>): Promise<T> {
      const end = guard(interaction, noop)(name);
      return Promise.resolve(promise).then(
        (value) => (end(), value),
        (reason: unknown) => {
          end();
          guard(record, undefined)("error", { code: "interaction_failed", name });
          throw reason; // the caller's own rejection, passed through unchanged
        },
      );
    },
    error: guard((code: string, opts: ErrorOptions = {}) => {
      const fields = { code, class: opts.class, fatal: opts.fatal, name: opts.name };
      record("error", fields);
      // A refusal or a failure ends the open play attempts: they are not also exits before start.
      if (!closed && classOf(fields) !== "warning") failHooks.forEach((hook) => guard(hook, undefined)());
    }, undefined),
    flush: () => guard(() => transport.flush(), Promise.resolve())().catch(noop),
    shutdown: () => {
      if (closed) return Promise.resolve();
      try {
        detachers.forEach((d) => guard(d, undefined)());
        detachers.clear();
        stopHide();
      } catch {
        // keep going: the queue is still worth sending
      }
      closed = true;
      transport.stop();
      return transport.flush().catch(noop);
    },
    stats: () => ({ ...transport.stats }),
  };
}

/** A reporter that records nothing (unsampled session or unusable options). */
function disabled(sessionId = ""): Reporter {
  const zero: Stats = { sent: 0, retries: 0, droppedOverflow: 0, droppedRefused: 0, droppedExhausted: 0, droppedInvalid: 0 };
  return {
    sessionId,
    sampled: false,
    watchVideo: () => noop,
    interaction: () => noop,
    measure: <T>(_name: string, promise: PromiseLike<T>) => Promise.resolve(promise),
    error: noop,
    flush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
    stats: () => ({ ...zero }),
  };
}
