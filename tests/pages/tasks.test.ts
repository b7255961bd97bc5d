// The task list's pure parts (pages/src/tasks/taskView.ts), the tasks address, and the
// GitHub picker's branch order (pages/src/projects/GitHubPicker.tsx).
import { describe, expect, it } from "vitest";

import type { Task } from "../../pages/src/api/types";
import { branchNames } from "../../pages/src/projects/GitHubPicker";
import { match } from "../../pages/src/router";
import { elapsedSeconds, endReason, formatElapsed, isActive, stepWords } from "../../pages/src/tasks/taskView";

const task: Task = {
  id: "t1",
  project_id: "p1",
  chat_id: "c1",
  run_id: "r1",
  title: "Fix the README",
  branch: "sam/fix-the-readme-t1",
  permission_mode: "bypass",
  status: "running",
  step: "push",
  pull_request_url: null,
  error: null,
  history: [{ from: null, to: "queued", reason: "submitted", at: "2026-12-04T09:00:00Z" }],
  created_at: "2026-12-04T09:00:00Z",
  updated_at: "2026-12-04T09:01:00Z",
};
const submittedMs = Date.parse(task.created_at);

describe("a task's elapsed time", () => {
  it("runs on to now while the task is active", () => {
    expect(elapsedSeconds(task, submittedMs + 125_000)).toBe(125);
    expect(elapsedSeconds({ ...task, status: "queued" }, submittedMs + 5_000)).toBe(5);
  });

  it("stops at the task's last change once it has ended", () => {
    for (const status of ["completed", "failed", "cancelled"] as const) {
      expect(elapsedSeconds({ ...task, status }, submittedMs + 3_600_000)).toBe(60);
    }
  });

  it("is never negative, and zero for a time it cannot read", () => {
    expect(elapsedSeconds(task, submittedMs - 10_000)).toBe(0);
    expect(elapsedSeconds({ ...task, created_at: "not a time" }, submittedMs)).toBe(0);
  });

  it("reads D1's own timestamps (space, no zone) as UTC", () => {
    expect(elapsedSeconds({ ...task, created_at: "2026-12-04 09:00:00" }, submittedMs + 7_000)).toBe(7);
  });

  it.each([
    [0, "0 s"],
    [59, "59 s"],
    [60, "1 min 00 s"],
    [185, "3 min 05 s"],
    [3_599, "59 min 59 s"],
    [3_720, "1 h 02 min"],
  ])("%i s reads %s", (seconds, words) => {
    expect(formatElapsed(seconds)).toBe(words);
  });
});

describe("what the list says of a task", () => {
  it("may cancel only a queued or running task", () => {
    expect(isActive({ status: "queued" })).toBe(true);
    expect(isActive({ status: "running" })).toBe(true);
    expect(isActive({ status: "completed" })).toBe(false);
    expect(isActive({ status: "failed" })).toBe(false);
    expect(isActive({ status: "cancelled" })).toBe(false);
  });

  it("names its step in words, and an unknown step as it is", () => {
    expect(stepWords("pull_request")).toBe("opening the pull request");
    expect(stepWords("workspace_ready")).toBe("waiting for the workspace to start");
    expect(stepWords("turn_ended")).toBe("the agent is working");
    expect(stepWords("rebase_onto_main")).toBe("rebase onto main");
    expect(stepWords(null)).toBeNull();
  });

  it("says why it ended: its error first, else its last transition's reason", () => {
    const failed = {
      ...task,
      status: "failed" as const,
      error: "GitHub refused the push: the token lacks contents:write",
      history: [...task.history, { from: "running" as const, to: "failed" as const, reason: "push failed", at: task.updated_at }],
    };
    expect(endReason(failed)).toBe(failed.error);
    expect(endReason({ ...failed, error: null })).toBe("push failed");
    expect(endReason({ ...failed, error: null, history: [] })).toBeNull();
  });
});

describe("the tasks address", () => {
  it.each([
    ["/projects/p1/tasks", { screen: "project", id: "p1", chatId: null, tasks: true }],
    ["/projects/p1/tasks/t1", { screen: "not-found" }],
    ["/projects/p1", { screen: "project", id: "p1", chatId: null }],
  ])("%s", (path, route) => {
    expect(match(path)).toStrictEqual(route);
  });
});

describe("the picker's branches", () => {
  const branch = (name: string) => ({ name, sha: "0".repeat(40), protected: false });

  it("lists the default branch first, once, then the others in GitHub's order", () => {
    expect(branchNames([branch("dev"), branch("main"), branch("release")], "main")).toEqual(["main", "dev", "release"]);
  });

  it("offers the default branch before the list has loaded", () => {
    expect(branchNames(undefined, "trunk")).toEqual(["trunk"]);
  });
});
