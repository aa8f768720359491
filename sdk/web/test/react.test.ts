// @vitest-environment happy-dom
// The React adapter: <StreamSLOProvider>, useVideoSLO(ref, options), useInteraction(name) in a real React 19 tree.
import { createElement, StrictMode, useRef } from "react";
import { act } from "react";
import { createRoot, type Root } from "react-dom/client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { StreamSLOProvider, type InteractionHandle, useInteraction, useReporter, useVideoSLO } from "../src/react";
import { createReporterWith, type Reporter } from "../src/reporter";
import type { WireEvent } from "../src/types";
import { fakeBrowser } from "./fake";

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

let clock = 0;
let root: Root;
let host: HTMLElement;

function reporter() {
  const b = fakeBrowser();
  b.env.now = () => clock;
  return { ...b, slo: createReporterWith(b.env, { collector: "https://c.example", region: "eu-west-1" }) };
}

async function sentEvents(b: ReturnType<typeof reporter>): Promise<WireEvent[]> {
  await b.slo.flush();
  return b.sent.flatMap((s) => s.beacon.events);
}

function render(el: ReturnType<typeof createElement>): void {
  act(() => root.render(el));
}

beforeEach(() => {
  clock = 0;
  host = document.createElement("div");
  document.body.appendChild(host);
  root = createRoot(host);
});
afterEach(() => {
  act(() => root.unmount());
  host.remove();
});

describe("useVideoSLO", () => {
  function Player(): ReturnType<typeof createElement> {
    const ref = useRef<HTMLVideoElement>(null);
    useVideoSLO(ref);
    return createElement("video", { ref, id: "v" });
  }

  it("watches the component's <video>: play → first frame is a first_frame event", async () => {
    const b = reporter();
    render(createElement(StreamSLOProvider, { reporter: b.slo }, createElement(Player)));
    const video = host.querySelector("video") as HTMLVideoElement;
    clock = 10;
    video.dispatchEvent(new Event("play"));
    clock = 131;
    // happy-dom has no requestVideoFrameCallback: the `playing` fallback ends the attempt
    video.dispatchEvent(new Event("playing"));
    expect(await sentEvents(b)).toMatchObject([{ type: "first_frame", value_ms: 121 }]);
  });

  it("options are read when used: a new liveLatency each render neither re-attaches nor goes stale", async () => {
    function LivePlayer({ behind }: { behind: number }): ReturnType<typeof createElement> {
      const ref = useRef<HTMLVideoElement>(null);
      useVideoSLO(ref, { live: true, liveLatency: () => behind });
      return createElement("video", { ref });
    }
    const b = reporter();
    const tree = (behind: number) => createElement(StreamSLOProvider, { reporter: b.slo }, createElement(LivePlayer, { behind }));
    render(tree(1000));
    const video = host.querySelector("video") as HTMLVideoElement;
    clock = 10;
    video.dispatchEvent(new Event("play"));
    render(tree(2500)); // mid-attempt: a re-attach would end it as an exit_before_start
    clock = 131;
    video.dispatchEvent(new Event("playing"));
    expect((await sentEvents(b)).map((e) => [e.type, e.value_ms])).toEqual([["first_frame", 121], ["live_latency", 2500]]);
  });

  it("unmounting the player detaches it, ending a pending attempt as exit_before_start", async () => {
    const b = reporter();
    render(createElement(StreamSLOProvider, { reporter: b.slo }, createElement(Player)));
    const video = host.querySelector("video") as HTMLVideoElement;
    video.dispatchEvent(new Event("play"));
    clock = 500;
    render(createElement(StreamSLOProvider, { reporter: b.slo }, null));
    video.dispatchEvent(new Event("playing"));
    expect(await sentEvents(b)).toMatchObject([{ type: "exit_before_start", value_ms: 500 }]);
  });
});

describe("useInteraction", () => {
  let handle: InteractionHandle | null = null;
  function Voter(): null {
    handle = useInteraction("poll_vote");
    return null;
  }

  it("start() … end() and measure(promise) report round trips named after the hook", async () => {
    const b = reporter();
    render(createElement(StreamSLOProvider, { reporter: b.slo }, createElement(Voter)));
    const end = handle!.start();
    clock = 75;
    end();
    await handle!.measure(Promise.resolve("ok"));
    expect((await sentEvents(b)).map((e) => [e.type, e.name])).toEqual([["interaction", "poll_vote"], ["interaction", "poll_vote"]]);
  });

  it("outside a provider the hooks do nothing and never throw", async () => {
    render(createElement(Voter));
    expect(() => handle!.start()()).not.toThrow();
    await expect(handle!.measure(Promise.resolve(7))).resolves.toBe(7);
  });
});

describe("StreamSLOProvider", () => {
  it("creates its reporter after mount from options (StrictMode's double mount included) and shuts it down on unmount", () => {
    const seen: (Reporter | null)[] = [];
    function Probe(): null {
      seen.push(useReporter());
      return null;
    }
    const options = { collector: "https://c.example", region: "eu-west-1", sampleRate: 1 };
    render(createElement(StrictMode, null, createElement(StreamSLOProvider, { options }, createElement(Probe))));
    const live = seen[seen.length - 1];
    expect(seen[0]).toBeNull(); // the first render has no reporter yet: it is made in an effect
    expect(live?.sampled).toBe(true);
    // a re-render with equal options keeps the same reporter
    render(createElement(StrictMode, null, createElement(StreamSLOProvider, { options: { ...options } }, createElement(Probe))));
    expect(seen[seen.length - 1]).toBe(live);
    act(() => root.render(null));
    expect(() => live?.interaction("after")()).not.toThrow();
    expect(live?.stats().droppedInvalid).toBe(1); // shut down: it records nothing more
  });
});
