/**
 * One tool call of the agent (ACP `tool_call`, merged with its updates): what it does, its
 * status, and its output — text, a diff, or the terminal tab its command runs in.
 */

import type { ToolCall, ToolCallContent } from "@agentclientprotocol/sdk";

import { Suspense, lazy } from "react";

import { textOf } from "./conversation";

// The diff library is loaded when a diff is first shown, not with the app's first script.
const DiffView = lazy(() => import("./DiffView").then((module) => ({ default: module.DiffView })));

const STATUS_TEXT: Record<string, string> = {
  pending: "Pending",
  in_progress: "Running",
  completed: "Done",
  failed: "Failed",
};

export function ToolCard({ call }: { call: ToolCall }) {
  const status = call.status ?? "pending";
  const command = commandOf(call.rawInput);
  return (
    <article className={`tool-card tool-${status}`} data-testid="tool-card" data-status={status}>
      <header className="tool-card-head">
        <span className="tool-kind">{call.kind ?? "tool"}</span>
        <span className="tool-title">{call.title}</span>
        <span className={`tool-status tool-status-${status}`} data-testid="tool-status">
          {STATUS_TEXT[status] ?? status}
        </span>
      </header>
      {command && <pre className="tool-command mono">$ {command}</pre>}
      {(call.content ?? []).map((content, index) => (
        <ToolContent key={index} content={content} />
      ))}
    </article>
  );
}

function ToolContent({ content }: { content: ToolCallContent }) {
  switch (content.type) {
    case "diff":
      return (
        <Suspense fallback={<p className="muted small mono">{content.path}</p>}>
          <DiffView path={content.path} oldText={content.oldText ?? null} newText={content.newText} />
        </Suspense>
      );
    case "terminal":
      // The agent's command is a read-only tab of the workspace's terminals, named after it.
      return <p className="muted small">The command runs in a read-only tab under Terminals.</p>;
    default:
      return <pre className="tool-output">{textOf(content.content)}</pre>;
  }
}

/** The command of an `execute` call, when the adapter says which (Claude Code's Bash). */
function commandOf(rawInput: unknown): string | null {
  if (typeof rawInput !== "object" || rawInput === null) return null;
  const command = (rawInput as { command?: unknown }).command;
  return typeof command === "string" ? command : null;
}
