/** The agent's plan for the turn (ACP `plan`): each entry with its status. */

import type { PlanEntry } from "@agentclientprotocol/sdk";

const MARK: Record<string, string> = { pending: "○", in_progress: "◐", completed: "●" };

export function Plan({ entries }: { entries: PlanEntry[] }) {
  return (
    <section className="plan" aria-label="Plan" data-testid="plan">
      <h3 className="plan-title">Plan</h3>
      <ol>
        {entries.map((entry, index) => (
          <li key={index} className={`plan-entry plan-${entry.status}`}>
            <span aria-hidden="true">{MARK[entry.status] ?? "○"}</span> {entry.content}
            <span className="visually-hidden"> ({entry.status.replace("_", " ")})</span>
          </li>
        ))}
      </ol>
    </section>
  );
}
