/**
 * The browser behind the {@link Env} seam: performance.now, fetch, sendBeacon, page lifecycle.
 *
 * Use {@link browserEnv} in production code; unit tests pass a fake Env instead.
 */

import type { Env } from "./types";

/** The real browser; safe to call where some APIs are missing (old browsers, SSR). */
export function browserEnv(): Env {
  const g = globalThis as typeof globalThis & { navigator?: Navigator; document?: Document };
  const nav = g.navigator;
  const perf = g.performance;
  return {
    now: () => (perf ? perf.now() : Date.now()),
    wall: () => Date.now(),
    random: Math.random,
    fetch: (url, init) => g.fetch(url, init),
    sendBeacon: nav && typeof nav.sendBeacon === "function" ? (url, body) => nav.sendBeacon(url, body) : undefined,
    setTimeout: (fn, ms) => g.setTimeout(fn, ms),
    clearTimeout: (h) => g.clearTimeout(h as ReturnType<typeof setTimeout>),
    onPageHide(onHide) {
      const doc = g.document;
      if (typeof g.addEventListener !== "function") return () => undefined;
      const onVisibility = (): void => {
        if (doc && doc.visibilityState === "hidden") onHide();
      };
      g.addEventListener("pagehide", onHide);
      doc?.addEventListener("visibilitychange", onVisibility);
      return () => {
        g.removeEventListener("pagehide", onHide);
        doc?.removeEventListener("visibilitychange", onVisibility);
      };
    },
  };
}

/** A random session id: 128 bits from crypto when there is one. */
export function newSessionId(random: () => number): string {
  const c = (globalThis as { crypto?: Crypto }).crypto;
  const bytes = new Uint8Array(16);
  if (c && typeof c.getRandomValues === "function") c.getRandomValues(bytes);
  else for (let i = 0; i < 16; i++) bytes[i] = Math.floor(random() * 256);
  let id = "";
  for (const b of bytes) id += (b + 256).toString(16).slice(1);
  return id;
}
