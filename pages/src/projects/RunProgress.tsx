/** A chat's run, inline in the conversation: finding a node, making the workspace, starting
 * the agent, each step with its status and what it said. */

import { StatusBadge } from "../components/ui";
import type { RunStep } from "./protocol";

const STEP_NAMES: Record<string, string> = {
  node: "Find a node",
  workspace: "Create the workspace",
  workspace_ready: "Wait for the workspace",
  agent_session: "Start the agent",
  linked: "Connect the chat",
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
