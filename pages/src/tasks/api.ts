/**
 * The task routes (worker/api/routes/tasks.py): submit a task to a project, list a project's
 * tasks (oldest first), show one, cancel one. Same-origin with the session cookie.
 */

import { request } from "../api/client";
import type { PermissionMode } from "../agent/protocol";
import type { Task } from "../api/types";

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
