/**
 * The agent asks before it acts: the options it offered, as buttons. Any viewer may answer
 * and the first answer wins; once resolved, the prompt says what was chosen and by whom.
 */

import type { PermissionItem, ResolvedBy } from "./conversation";

const RESOLVED_BY: Record<ResolvedBy, string> = {
  viewer: "by another viewer",
  timeout: "no one answered in time",
  cancel: "the turn was cancelled",
  stop: "the session stopped",
};

export function PermissionPrompt({
  item,
  answered,
  onAnswer,
}: {
  item: PermissionItem;
  /** The option this page chose, if it answered. */
  answered: string | undefined;
  onAnswer: (optionId: string) => void;
}) {
  const { resolved } = item;
  const chosen = item.options.find((option) => option.optionId === resolved?.optionId);
  return (
    <section className={`permission ${resolved ? "permission-resolved" : "permission-open"}`} data-testid="permission" aria-label="Permission request">
      <p className="permission-question">
        The agent asks: <strong>{item.toolCall.title ?? "may it use a tool?"}</strong>
      </p>
      {resolved === null ? (
        <div className="permission-options">
          {item.options.map((option) => (
            <button
              key={option.optionId}
              type="button"
              data-kind={option.kind}
              className={`button button-small ${option.kind.startsWith("allow") ? "button-primary" : ""}`}
              disabled={answered !== undefined}
              onClick={() => onAnswer(option.optionId)}
            >
              {option.name}
            </button>
          ))}
        </div>
      ) : (
        <p className="permission-outcome muted small" data-testid="permission-outcome">
          {resolved.outcome === "selected" ? `${chosen?.name ?? resolved.optionId}` : "Cancelled"} —{" "}
          {resolved.by === "viewer" && answered === resolved.optionId ? "answered here" : RESOLVED_BY[resolved.by]}
        </p>
      )}
    </section>
  );
}
