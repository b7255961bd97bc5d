/** How much the agent may do without asking: chosen when a session (or a project) starts. */

import type { PermissionMode } from "./protocol";

export const MODES: { mode: PermissionMode; label: string; hint: string }[] = [
  { mode: "ask", label: "Ask", hint: "asks before every edit and command" },
  { mode: "accept_edits", label: "Accept edits", hint: "edits files freely; asks before commands" },
  { mode: "bypass", label: "Bypass", hint: "never asks" },
];

export function PermissionModes({
  legend,
  mode,
  onChange,
}: {
  legend: string;
  mode: PermissionMode;
  onChange: (mode: PermissionMode) => void;
}) {
  return (
    <fieldset className="agent-modes">
      <legend>{legend}</legend>
      {MODES.map((m) => (
        <label key={m.mode} title={m.hint}>
          <input type="radio" name="permission-mode" value={m.mode} checked={mode === m.mode} onChange={() => onChange(m.mode)} />{" "}
          {m.label} <span className="muted small">({m.hint})</span>
        </label>
      ))}
    </fieldset>
  );
}
