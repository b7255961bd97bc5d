/**
 * What idle detection did to a workspace (issue 12's contract): why it was stopped, the
 * `sam/wip/...` branch SAM saved unpushed work to, or the flag that SAM kept it because its
 * work is saved nowhere else.
 */

import type { Workspace } from "../api/types";

/** The idle fields of a workspace; optional until every API this app talks to sends them. */
export type IdleFacts = {
  stopped_reason?: string | null;
  wip_branch?: string | null;
  needs_attention?: boolean;
};

export function IdleNote({ workspace, compact = false }: { workspace: Workspace & IdleFacts; compact?: boolean }) {
  const reason = workspace.status === "stopped" ? workspace.stopped_reason : null;
  if (!reason && !workspace.wip_branch && !workspace.needs_attention) return null;
  const size = compact ? "small" : "";
  return (
    <div className="idle-note" data-testid="idle-note">
      {reason && (
        <p className={`${size} muted`} data-testid="stopped-reason">
          {reason}
        </p>
      )}
      {workspace.wip_branch && (
        <p className={size} data-testid="wip-branch">
          Unpushed work was saved to the branch <span className="mono">{workspace.wip_branch}</span>.
        </p>
      )}
      {workspace.needs_attention && (
        <p className={`${size} warn-text`} role="status" data-testid="needs-attention">
          This workspace holds work that is saved nowhere else, so SAM kept it and its node. Push or copy the work from
          a terminal, then stop or delete the workspace.
        </p>
      )}
    </div>
  );
}
