/**
 * A project's tasks: describe one (the agent works on its own branch and SAM opens a pull
 * request when its turn ends), and the list with each task's status, step, elapsed time,
 * branch, pull request and a Cancel while it is queued or running.
 */

import { useEffect, useState } from "react";

import { ConfirmButton, ErrorNote, Loading, StatusBadge, When } from "../components/ui";
import { useLoad } from "../hooks";
import { Link } from "../router";
import { Composer } from "../projects/Composer";
import type { Task } from "../api/types";
import { tasksApi } from "./api";
import { elapsedSeconds, endReason, formatElapsed, isActive, pullRequestLink, stepWords } from "./taskView";

// How often the list is fetched again while a task is queued or running.
const POLL_MS = 2000;

export function TasksPanel({ projectId }: { projectId: string }) {
  const [polling, setPolling] = useState(false);
  const tasks = useLoad(() => tasksApi.list(projectId), [projectId], polling ? POLL_MS : null);
  const active = tasks.data?.some(isActive) ?? false;
  useEffect(() => setPolling(active), [active]);
  const [error, setError] = useState<unknown>(null);

  const submit = async (text: string): Promise<boolean> => {
    setError(null);
    try {
      await tasksApi.submit(projectId, text.trim());
      await tasks.reload();
      setPolling(true);
      return true;
    } catch (failure) {
      setError(failure);
      return false;
    }
  };

  return (
    <section className="tasks" aria-label="Tasks">
      <h2>Tasks</h2>
      <p className="muted">
        Describe a change. The agent makes it on a branch of its own; when its turn ends SAM commits and pushes that
        branch, opens a pull request and stops the workspace.
      </p>
      {error !== null && <ErrorNote error={error} />}
      <Composer label="New task" placeholder="What should the agent change?" action="Submit task" onSend={submit} />
      {tasks.state === "loading" && !tasks.data && <Loading what="tasks" />}
      {tasks.state === "error" && <ErrorNote error={tasks.error} onRetry={() => void tasks.reload()} />}
      {tasks.data && tasks.data.length === 0 && <p className="muted">No tasks yet.</p>}
      {tasks.data && tasks.data.length > 0 && (
        <ul className="rows card" aria-label="Task list">
          {tasks.data.map((task) => (
            <TaskRow key={task.id} task={task} onChanged={() => void tasks.reload()} />
          ))}
        </ul>
      )}
    </section>
  );
}

export function TaskRow({ task, onChanged }: { task: Task; onChanged: () => void }) {
  const [error, setError] = useState<unknown>(null);
  const cancel = async () => {
    setError(null);
    try {
      await tasksApi.cancel(task.id);
      onChanged();
    } catch (failure) {
      setError(failure);
    }
  };
  const step = stepWords(task.step);
  const pullRequest = pullRequestLink(task.pull_request_url);
  const reason = task.status === "failed" || task.status === "cancelled" ? endReason(task) : null;
  return (
    <li className="row task-row" data-testid="task-row" data-task-id={task.id}>
      <div className="row-main">
        <span className="row-title">{task.title}</span>
        <div className="muted small">
          <span className="mono" data-testid="task-branch">
            {task.branch}
          </span>{" "}
          · <span data-testid="task-elapsed">{formatElapsed(elapsedSeconds(task, Date.now()))}</span> · submitted{" "}
          <When iso={task.created_at} />
          {task.chat_id && (
            <>
              {" "}
              · <Link href={`/projects/${task.project_id}/chats/${task.chat_id}`}>chat</Link>
            </>
          )}
        </div>
        {step && isActive(task) && (
          <div className="small" data-testid="task-step">
            {step}
          </div>
        )}
        {pullRequest && (
          <div className="small">
            <a href={pullRequest} target="_blank" rel="noreferrer" data-testid="task-pull-request">
              Pull request
            </a>
          </div>
        )}
        {reason && (
          <div className={`small ${task.status === "failed" ? "error-text" : "muted"}`} data-testid="task-reason">
            {reason}
          </div>
        )}
        {error !== null && <ErrorNote error={error} />}
      </div>
      <div className="row-actions">
        <StatusBadge status={task.status} />
        {isActive(task) && <ConfirmButton label="Cancel task" confirmLabel="Yes, cancel the task" onConfirm={cancel} />}
      </div>
    </li>
  );
}
