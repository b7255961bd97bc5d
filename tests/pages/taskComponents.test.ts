// What a user sees of a task row and of a workspace that idle detection stopped, rendered to
// HTML in Node (react-dom/server).
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";

import type { Workspace } from "../../pages/src/api/types";
import { IdleNote } from "../../pages/src/components/IdleNote";
import type { Task } from "../../pages/src/api/types";
import { TaskRow } from "../../pages/src/tasks/TasksPanel";
import { pullRequestLink } from "../../pages/src/tasks/taskView";

const task: Task = {
  id: "t1",
  project_id: "p1",
  chat_id: "c1",
  run_id: "r1",
  title: "Fix the README",
  branch: "sam/fix-the-readme-t1",
  permission_mode: "bypass",
  status: "running",
  step: "pull_request",
  pull_request_url: null,
  error: null,
  history: [{ from: null, to: "queued", reason: "submitted", at: "2026-12-04T09:00:00Z" }],
  created_at: "2026-12-04T09:00:00Z",
  updated_at: "2026-12-04T09:01:00Z",
};
const row = (changes: Partial<Task>) => renderToStaticMarkup(createElement(TaskRow, { task: { ...task, ...changes }, onChanged: () => {} }));

describe("a task row", () => {
  it("shows a running task's title, branch, step, chat and a Cancel", () => {
    const html = row({});
    expect(html).toContain("Fix the README");
    expect(html).toContain("sam/fix-the-readme-t1");
    expect(html).toContain("opening the pull request");
    expect(html).toContain('href="/projects/p1/chats/c1"');
    expect(html).toContain("Cancel task");
  });

  it("shows a completed task's pull request, and neither step nor Cancel", () => {
    const html = row({ status: "completed", step: "finished", pull_request_url: "https://github.com/o/r/pull/7" });
    expect(html).toContain('href="https://github.com/o/r/pull/7"');
    expect(html).not.toContain("stopping the workspace");
    expect(html).not.toContain("Cancel task");
  });

  it("says why a task failed", () => {
    const html = row({ status: "failed", error: "GitHub answered 403: API rate limit exceeded; retry after 10:05" });
    expect(html).toContain("API rate limit exceeded; retry after 10:05");
    expect(html).not.toContain("Cancel task");
  });

  it("never links a pull request address that is not a web page", () => {
    expect(pullRequestLink("javascript:alert(1)")).toBeNull();
    expect(pullRequestLink("not a url")).toBeNull();
    expect(pullRequestLink(null)).toBeNull();
    expect(row({ status: "completed", pull_request_url: "javascript:alert(1)" })).not.toContain("javascript:");
  });
});

type IdleFacts = Partial<Pick<Workspace, "stopped_reason" | "wip_branch" | "needs_attention">>;
const note = (facts: IdleFacts, status: Workspace["status"] = "stopped") =>
  renderToStaticMarkup(
    createElement(IdleNote, {
      workspace: { status, stopped_reason: null, wip_branch: null, needs_attention: null, ...facts },
    }),
  );

describe("a workspace idle detection acted on", () => {
  it("says why it was stopped, and where SAM saved its unpushed work", () => {
    const html = note({
      stopped_reason: "stopped after 30 min without terminal or agent activity",
      wip_branch: "sam/wip/w1-20261204T0930",
    });
    expect(html).toContain("stopped after 30 min without terminal or agent activity");
    expect(html).toContain("sam/wip/w1-20261204T0930");
  });

  it("flags one SAM kept because its work is saved nowhere else, with the API's reason", () => {
    const why = "Idle for 30 min with uncommitted or unpushed work that SAM cannot save. Push it, then stop it.";
    const html = note({ needs_attention: why }, "running");
    expect(html).toContain(why);
    expect(html).toContain('role="status"');
  });

  it("shows nothing for a workspace idle detection never touched", () => {
    expect(note({})).toBe("");
    expect(note({ stopped_reason: "", wip_branch: "", needs_attention: "" })).toBe("");
  });

  it("shows no stop reason once the workspace runs again", () => {
    expect(note({ stopped_reason: "stopped after 30 min without terminal or agent activity" }, "running")).toBe("");
  });
});
