/**
 * Public types of the SDK and the beacon wire format v1 (docs/collector.md).
 *
 * Use {@link ReporterOptions} to configure `createReporter`; the wire types
 * mirror `collector/schema.py` field for field (the collector refuses unknown
 * fields, so nothing else may be sent).
 */

/** Options of `createReporter`. Only `collector` and `region` are required. */
export interface ReporterOptions {
  /** Collector base URL (`https://collector.example`) or the full `.../v1/beacons` URL. */
  collector: string;
  /** Ingest key; sent as `?key=` (a CORS-simple request: no preflight). */
  key?: string;
  /** The viewer's region as the platform names it (`eu-west-1`); unknown ones count as `other`. */
  region: string;
  /** Share of sessions that report, 0..1 (default 1); drawn once per session. */
  sampleRate?: number;
  /** Send buffered events at most this long after they happen (default 5000 ms). */
  flushIntervalMs?: number;
  /** Events per beacon (default 50, at most 500); a full batch is sent at once. */
  maxBatchEvents?: number;
  /** Events held while the collector is unreachable (default 1000); the oldest are dropped beyond. */
  maxQueueEvents?: number;
  /** Sends of one beacon before it is dropped (default 8). */
  maxAttempts?: number;
  /** `sdk` label of the beacons (default `web/<version>`). */
  sdk?: string;
  /** Milliseconds between two `playing` heartbeats of a playing video (default 10000). */
  heartbeatMs?: number;
  /** Error codes that are business refusals (geo-block, entitlement, concurrency limit): class `business`. */
  businessErrorCodes?: string[];
  /**
   * Extra dimensions of every beacon, e.g. `{cdn: "fastly"}` (at most 8, keys and values cut to 64
   * characters); the collector keeps the one the spec declares, values outside its allow-list as `other`.
   */
  dimensions?: Record<string, string>;
}

/** Options of `watchVideo(video, options)`: whether the stream is live, and how far behind the edge it is. */
export interface WatchOptions {
  /** Live stream: send `live_latency`. Default: live when `video.duration` is `Infinity`. */
  live?: boolean;
  /**
   * The distance behind the live edge in ms, e.g. from the player library (`() => hls.latency * 1000`);
   * `undefined` sends no sample this time. Default: `getStartDate()` (program date time) against the
   * wall clock, else the end of `video.seekable` against `currentTime`.
   */
  liveLatency?: () => number | undefined;
}

/** One event as the collector takes it (`WireEvent`). */
export interface WireEvent {
  type: EventType;
  /** Wall-clock time of the event, unix seconds. */
  ts: number;
  value_ms?: number;
  name?: string;
  code?: string;
  /** Errors: whether it counts against the SLO (`fatal`), is only counted (`warning`) or is a refusal (`business`). */
  class?: ErrorClass;
  /** Errors, the older form of `class` (`true` = fatal); the SDK sends `class`. */
  fatal?: boolean;
}

export type EventType =
  | "first_frame" | "interaction" | "error" | "exit_before_start" | "stall" | "playing" | "live_latency";

export type ErrorClass = "fatal" | "warning" | "business";

/** One beacon (`WireBeacon`). */
export interface WireBeacon {
  v: 1;
  session_id: string;
  seq: number;
  sent_at: number;
  region: string;
  sdk: string;
  kind: "rum";
  /** The `dimensions` option, when there is one. */
  dimensions?: Record<string, string>;
  events: WireEvent[];
}

/** What the reporter dropped or sent so far (`slo.stats()`). */
export interface Stats {
  /** Beacons the collector acknowledged (202), or handed to `sendBeacon` on unload. */
  sent: number;
  /** Sends that were retried (network error, 408, 429, 5xx). */
  retries: number;
  /** Events dropped because the queue was full (oldest first). */
  droppedOverflow: number;
  /** Events of beacons the collector refused with a 4xx other than 408/429. */
  droppedRefused: number;
  /** Events of beacons that failed `maxAttempts` times. */
  droppedExhausted: number;
  /** Events not recordable (negative or over 10 min value, reporter shut down). */
  droppedInvalid: number;
}

/** What the reporter needs from the browser; a seam for the unit tests. */
export interface Env {
  /** Monotonic milliseconds (`performance.now()`). */
  now(): number;
  /** Wall-clock milliseconds (`Date.now()`). */
  wall(): number;
  random(): number;
  fetch(url: string, init: RequestInit): Promise<{ status: number; headers: { get(name: string): string | null } }>;
  /** `navigator.sendBeacon`, or undefined where there is none. */
  sendBeacon?: (url: string, body: string) => boolean;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  /** Subscribe to page lifecycle: calls `onHide` on pagehide and visibilitychange → hidden. */
  onPageHide(onHide: () => void): () => void;
}
