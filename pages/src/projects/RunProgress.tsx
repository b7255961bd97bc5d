/** A chat's run, inline in the conversation: making the workspace, waiting for it, starting
 * the agent, connecting the chat; each step with its latest status and what it said. */

import { StatusBadge } from "../components/ui";
import type { RunStep } from "./protocol";

// The TaskRunner's steps (worker/chats/run.py Step) and its stop and session reports.
const STEP_NAMES: Record<string, string> = {
  workspace: "Workspace",
  workspace_ready: "Workspace ready",
  agent_session: "Agent",
  linked: "Chat connected",
  stop: "Stop",
  session: "Session",
};

export function RunProgress({ steps }: { steps: RunStep[] }) {
  return (
    <section className="run-progress" aria-label="Run progress" data-testid="run-progress">
      <ol>
        {steps.map((step) => (
          <li key={step.step} className={`run-step run-${step.status}`}>
            <StatusBadge status={step.status} label={STEP_NAMES[step.step] ?? step.step} />
            {step.detail && <span className={step.status === "failed" ? "error-text" : "muted small"}>{step.detail}</span>}
          </li>
        ))}
      </ol>
    </section>
  );
}
