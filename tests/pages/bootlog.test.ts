// The workspace page shows the polled boot log plus live entries it does not hold yet.
import { describe, expect, it } from "vitest";

import type { BootLogEntry } from "../../pages/src/api/types";
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
