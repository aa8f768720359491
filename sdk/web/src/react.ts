/**
 * React adapter, `@streamslo/web/react`: one reporter per provider, hooks for videos and interactions.
 *
 * Use `<StreamSLOProvider options={…}>` once near the root; the reporter is
 * created after mount and shut down (flushed) on unmount, so StrictMode's
 * double mount is harmless. Until it exists the hooks do nothing.
 *
 *     function Player() {
 *       const ref = useRef<HTMLVideoElement>(null);
 *       useVideoSLO(ref);
 *       const vote = useInteraction("poll_vote");
 *       return <><video ref={ref} src={src} autoPlay /><button onClick={() => vote.measure(api.vote())}>Vote</button></>;
 *     }
 */

import { createContext, createElement, useContext, useEffect, useMemo, useRef, useState } from "react";
import type { ReactNode, RefObject } from "react";
import { createReporter, type Reporter } from "./reporter";
import type { ReporterOptions, WatchOptions } from "./types";

const Context = createContext<Reporter | null>(null);

export interface StreamSLOProviderProps {
  /** Options of the reporter this provider creates (ignored when `reporter` is given). */
  options?: ReporterOptions;
  /** A reporter you created and own (the provider never shuts it down). */
  reporter?: Reporter;
  children?: ReactNode;
}

export function StreamSLOProvider({ options, reporter, children }: StreamSLOProviderProps): ReactNode {
  const [own, setOwn] = useState<Reporter | null>(null);
  // Recreate only when the options' content changes, not on every render's new object.
  const optionsKey = JSON.stringify(options ?? null);
  useEffect(() => {
    if (reporter || !options) return undefined;
    const created = createReporter(options);
    setOwn(created);
    return () => {
      setOwn(null);
      void created.shutdown();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [reporter, optionsKey]);
  return createElement(Context.Provider, { value: reporter ?? own }, children);
}

/** The provider's reporter, or null before it is created (or outside a provider). */
export function useReporter(): Reporter | null {
  return useContext(Context);
}

/**
 * Watch the `<video>` behind `ref` for as long as the component is mounted.
 * `options` are read when used, so a new object each render (or a new `liveLatency`
 * closure) takes effect without re-attaching, which would end the attempt in progress.
 */
export function useVideoSLO(ref: RefObject<HTMLVideoElement | null>, options?: WatchOptions): void {
  const reporter = useReporter();
  const latest = useRef(options);
  latest.current = options;
  useEffect(() => {
    const video = ref.current;
    const current: WatchOptions = {
      get live() {
        return latest.current?.live;
      },
      get liveLatency() {
        return latest.current?.liveLatency;
      },
    };
    return reporter && video ? reporter.watchVideo(video, current) : undefined;
  }, [reporter, ref]);
}

export interface InteractionHandle {
  /** Start one round trip; call the returned function when the answer is shown. */
  start(): () => void;
  /** The round trip of `promise` (a rejection also reports a non-fatal error). */
  measure<T>(promise: PromiseLike<T>): Promise<T>;
}

/** Round trips of the interaction `name` (a poll vote, a chat message, a co-host request). */
export function useInteraction(name: string): InteractionHandle {
  const reporter = useReporter();
  return useMemo<InteractionHandle>(() => ({
    start: () => (reporter ? reporter.interaction(name) : () => undefined),
    measure: <T>(promise: PromiseLike<T>) => (reporter ? reporter.measure(name, promise) : Promise.resolve(promise)),
  }), [reporter, name]);
}
