/**
 * The task routes (docs/protocols/tasks.md; issue 12's contract): submit a task to a project,
 * list a project's tasks, show one, cancel one. Same-origin with the session cookie.
 */

import { request } from "../api/client";
import type { PermissionMode } from "../agent/protocol";

/** The five states of a task: queued → running → completed | failed | cancelled. */
export type TaskStatus = "queued" | "running" | "completed" | "failed" | "cancelled";

export type TaskTransition = { from: string | null; to: TaskStatus; reason: string; at: string };

export type Task = {
  id: string;
  project_id: string;
  chat_id: string | null;
  run_id: string | null;
  title: string;
  /** `sam/<slug>-<short id>`: the only branch SAM pushes for this task. */
  branch: string;
  status: TaskStatus;
  /** The TaskRunner step the task is at (or ended at), e.g. "push". */
  step: string | null;
  pull_request_url: string | null;
  error: string | null;
  history: TaskTransition[];
  created_at: string;
  updated_at: string;
};

const enc = encodeURIComponent;

export const tasksApi = {
  submit: (projectId: string, message: string, permissionMode?: PermissionMode) =>
    request<Task>("POST", `/api/projects/${enc(projectId)}/tasks`, {
      message,
      ...(permissionMode ? { permission_mode: permissionMode } : {}),
    }),
  list: (projectId: string) =>
    request<{ tasks: Task[] }>("GET", `/api/projects/${enc(projectId)}/tasks`).then((r) => r.tasks),
  task: (id: string) => request<Task>("GET", `/api/tasks/${enc(id)}`),
  cancel: (id: string) => request<Task>("POST", `/api/tasks/${enc(id)}/cancel`),
};
