// The workspace page shows the polled boot log plus live entries it does not hold yet.
import { describe, expect, it } from "vitest";

import type { BootLogEntry } from "../../pages/src/api/types";
import { displayStatus } from "../../pages/src/components/BootLog";
import { mergeBootLog } from "../../pages/src/components/liveBootLog";

const entry = (
  step: string,
  status: BootLogEntry["status"],
  at: string,
  source: BootLogEntry["source"] = "agent",
): BootLogEntry => ({
  step,
  status,
  message: `${step} ${status}`,
  detail: null,
  timestamp: at,
  source,
});

describe("mergeBootLog", () => {
  it("keeps the polled order and adds only live entries not polled yet", () => {
    const polled = [entry("request", "succeeded", "t1", "control-plane"), entry("clone", "started", "t2")];
    const live = [entry("clone", "started", "t2"), entry("clone", "succeeded", "t3")];
    expect(mergeBootLog(polled, live).map((e) => e.message)).toEqual([
      "request succeeded",
      "clone started",
      "clone succeeded",
    ]);
  });

  it("shows each entry once when the poll catches up with the stream", () => {
    const live = [entry("clone", "started", "t2"), entry("clone", "succeeded", "t3")];
    expect(mergeBootLog(live, live)).toEqual(live);
  });
});

describe("displayStatus", () => {
  const log = [
    entry("request", "succeeded", "t1", "control-plane"),
    entry("dispatch", "started", "t2", "control-plane"),
    entry("clone", "started", "t3"),
  ];

  it("shows only the newest started step as running while the workspace is created", () => {
    expect(log.map((_, index) => displayStatus(log, index, true))).toEqual(["succeeded", "done", "started"]);
  });

  it("shows no step as running once the workspace has settled (the dispatch step included)", () => {
    const ready = [...log, entry("ready", "succeeded", "t4")];
    const afterwards = [...ready.slice(0, 1), entry("dispatch", "started", "t5", "control-plane")];
    for (const settled of [ready, afterwards]) {
      expect(settled.map((_, index) => displayStatus(settled, index, false))).not.toContain("started");
    }
  });
});
