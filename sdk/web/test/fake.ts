/**
 * A fake browser for the unit tests: scripted collector answers, recorded requests and beacons.
 *
 * Time is vitest's fake clock (`vi.useFakeTimers()`), so `now`, `wall` and
 * the timers move only when a test advances them.
 */

import type { Env, WireBeacon } from "../src/types";

export interface Sent {
  url: string;
  beacon: WireBeacon;
  bytes: number;
  at: number;
  via: "fetch" | "beacon";
  contentType?: string;
}

export type Answer = { status: number; retryAfter?: string } | "network-error" | "hang";

export function fakeBrowser(answers: Answer[] = [], opts: { random?: () => number; beaconOk?: boolean } = {}) {
  const sent: Sent[] = [];
  let hide: (() => void) | null = null;
  const t0 = Date.now();
  const record = (url: string, body: string, via: Sent["via"], contentType?: string): void => {
    sent.push({ url, beacon: JSON.parse(body), bytes: new TextEncoder().encode(body).length, at: Date.now() - t0, via, contentType });
  };
  const env: Env = {
    now: () => Date.now() - t0,
    wall: () => Date.now(),
    random: opts.random ?? (() => 0.5),
    fetch: (url, init) => {
      const headers = init.headers as Record<string, string>;
      record(url, String(init.body), "fetch", headers["content-type"]);
      const a = answers.shift() ?? { status: 202 };
      if (a === "network-error") return Promise.reject(new TypeError("Failed to fetch"));
      if (a === "hang") return new Promise(() => undefined);
      return Promise.resolve({
        status: a.status,
        headers: { get: (name: string) => (name.toLowerCase() === "retry-after" ? a.retryAfter ?? null : null) },
      });
    },
    sendBeacon: (url, body) => {
      if (opts.beaconOk === false) return false;
      record(url, body, "beacon", "text/plain;charset=UTF-8");
      return true;
    },
    setTimeout: (fn, ms) => setTimeout(fn, ms),
    clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
    onPageHide: (fn) => {
      hide = fn;
      return () => {
        hide = null;
      };
    },
  };
  return {
    env,
    sent,
    answers,
    hide: () => hide?.(),
    /** Event names of every send, in order. */
    names: () => sent.map((s) => s.beacon.events.map((e) => e.name ?? e.type)),
  };
}

/** A deterministic uniform generator (mulberry32) for the sampling test. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A `<video>` stand-in: an EventTarget with the few properties the watcher reads.
 * `emit` sets `paused` as the browser does before dispatching `play`, `pause` and `ended`.
 */
export class FakeVideo extends EventTarget {
  paused = true;
  readyState = 0;
  duration = NaN;
  currentTime = 0;
  /** The end of the last seekable range in seconds; null is an empty `seekable`. */
  seekableEnd: number | null = null;
  error: { code: number } | null = null;
  frameCallbacks = new Map<number, (now: number, meta: { expectedDisplayTime?: number }) => void>();
  private next = 1;
  constructor(withFrameCallback = true) {
    super();
    if (!withFrameCallback) {
      (this as { requestVideoFrameCallback?: unknown }).requestVideoFrameCallback = undefined;
      (this as { cancelVideoFrameCallback?: unknown }).cancelVideoFrameCallback = undefined;
    }
  }
  get seekable(): { length: number; end(i: number): number } {
    const end = this.seekableEnd;
    return { length: end === null ? 0 : 1, end: () => end ?? NaN };
  }
  requestVideoFrameCallback(cb: (now: number, meta: { expectedDisplayTime?: number }) => void): number {
    this.frameCallbacks.set(this.next, cb);
    return this.next++;
  }
  cancelVideoFrameCallback(h: number): void {
    this.frameCallbacks.delete(h);
  }
  emit(type: string): void {
    if (type === "play") this.paused = false;
    if (type === "pause" || type === "ended") this.paused = true;
    this.dispatchEvent(new Event(type));
  }
  presentFrame(at: number): void {
    const cbs = [...this.frameCallbacks.values()];
    this.frameCallbacks.clear();
    for (const cb of cbs) cb(at, { expectedDisplayTime: at });
  }
  /** As `HTMLVideoElement`, for `watchVideo`. */
  get element(): HTMLVideoElement {
    return this as unknown as HTMLVideoElement;
  }
}
