/**
 * What idle detection did to a workspace (worker/workspaces/idle.py): why SAM stopped it,
 * the `sam/wip/...` branch it saved unpushed work to, or why it kept the workspace (and its
 * node) running with work saved nowhere else, for its owner to decide (the API's text says
 * what to do).
 */

import type { Workspace } from "../api/types";

type IdleFacts = Pick<Workspace, "status" | "stopped_reason" | "wip_branch" | "needs_attention">;

export function IdleNote({ workspace, compact = false }: { workspace: IdleFacts; compact?: boolean }) {
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
          Saved work: <span className="mono">{workspace.wip_branch}</span>
        </p>
      )}
      {workspace.needs_attention && (
        <p className={`${size} warn-text`} role="status" data-testid="needs-attention">
          {workspace.needs_attention}
        </p>
      )}
    </div>
  );
}
