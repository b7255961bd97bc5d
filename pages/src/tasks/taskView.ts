/** What the task list shows of a task: its step in words, how long it ran, what may be done. */

import type { Step, Task, TaskStatus } from "../api/types";

const ACTIVE: ReadonlySet<TaskStatus> = new Set(["queued", "running"]);

/** Queued or running: it may still be cancelled, and the list keeps polling while it is. */
export function isActive(task: Pick<Task, "status">): boolean {
  return ACTIVE.has(task.status);
}

// The step a task's run is at (worker/chats/run.py Step, in progress until the next one), as
// a user reads it. Keyed by the API's own Step, so a step added there fails the type check.
const STEP_WORDS: Record<Step, string> = {
  workspace: "creating the workspace",
  workspace_ready: "waiting for the workspace to start",
  agent_session: "starting the agent",
  linked: "connecting the chat",
  turn_ended: "the agent is working",
  push: "committing and pushing the branch",
  pull_request: "opening the pull request",
  posted: "posting the link in the chat",
  finished: "stopping the workspace",
};

/** "opening the pull request"; a step this app does not know yet is shown as it is named. */
export function stepWords(step: string | null): string | null {
  if (!step) return null;
  return (STEP_WORDS as Record<string, string>)[step] ?? step.replaceAll("_", " ");
}

function parseTime(iso: string): number {
  return Date.parse(iso.includes("T") ? iso : iso.replace(" ", "T") + "Z");
}

/** Seconds from submission to its end (its last change) or, while it is active, to `nowMs`. */
export function elapsedSeconds(task: Pick<Task, "status" | "created_at" | "updated_at">, nowMs: number): number {
  const start = parseTime(task.created_at);
  const end = isActive(task) ? nowMs : parseTime(task.updated_at);
  if (Number.isNaN(start) || Number.isNaN(end)) return 0;
  return Math.max(0, Math.floor((end - start) / 1000));
}

/** "45 s", "3 min 05 s", "1 h 02 min". */
export function formatElapsed(seconds: number): string {
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${String(seconds % 60).padStart(2, "0")} s`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, "0")} min`;
}

/** Why a task ended as it did: its error, else the reason of its last transition. */
export function endReason(task: Pick<Task, "error" | "history">): string | null {
  if (task.error) return task.error;
  return task.history.at(-1)?.reason ?? null;
}

/** The pull request's address if it is a web page (http or https); nothing else is linked. */
export function pullRequestLink(url: string | null): string | null {
  if (!url) return null;
  try {
    const parsed = new URL(url);
    return parsed.protocol === "https:" || parsed.protocol === "http:" ? parsed.href : null;
  } catch {
    return null;
  }
}
