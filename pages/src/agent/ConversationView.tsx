/** A conversation's items in order (conversation.ts), each by its own component. */

import { memo } from "react";

import type { Conversation, Item } from "./conversation";
import { AgentMessage, Thought, UserMessage } from "./Message";
import { PermissionPrompt } from "./PermissionPrompt";
import { Plan } from "./Plan";
import { RunProgress } from "../projects/RunProgress";
import { ToolCard } from "./ToolCard";

const STOP_REASONS: Record<string, string> = {
  cancelled: "The turn was cancelled.",
  max_tokens: "The answer hit the model's token limit.",
  max_turn_requests: "The turn hit its limit of model requests.",
  refusal: "The model refused to continue.",
};

const STOPPED: Record<string, string> = {
  requested: "The session was stopped.",
  workspace_stopped: "The session stopped with its workspace.",
};

export function ConversationView({
  conversation,
  answered,
  onAnswer,
}: {
  conversation: Conversation;
  answered: Readonly<Record<string, string>>;
  onAnswer: (requestId: string, optionId: string) => void;
}) {
  const { items } = conversation;
  return (
    <div className="conversation" data-testid="conversation">
      {items.map((item, index) => (
        <ItemView
          key={"seq" in item ? item.seq : `gap-${index}`}
          item={item}
          last={index === items.length - 1 && conversation.state === "prompting"}
          answered={answered}
          onAnswer={onAnswer}
        />
      ))}
    </div>
  );
}

// The reducer keeps an unchanged item the same object: only the item that changed renders
// again (a streamed chunk re-renders one message, not the whole conversation).
const ItemView = memo(function ItemView({
  item,
  last,
  answered,
  onAnswer,
}: {
  item: Item;
  last: boolean;
  answered: Readonly<Record<string, string>>;
  onAnswer: (requestId: string, optionId: string) => void;
}) {
  switch (item.kind) {
    case "prompt":
      return <UserMessage text={item.text} />;
    case "message":
      return <AgentMessage text={item.text} streaming={last} />;
    case "thought":
      return <Thought text={item.text} />;
    case "tool":
      return <ToolCard call={item.call} />;
    case "plan":
      return <Plan entries={item.entries} />;
    case "permission":
      return (
        <PermissionPrompt
          item={item}
          answered={answered[item.requestId]}
          onAnswer={(optionId) => onAnswer(item.requestId, optionId)}
        />
      );
    case "turn_ended":
      return <p className="note">{STOP_REASONS[item.stopReason] ?? `The turn ended: ${item.stopReason}.`}</p>;
    case "agent_error":
      return (
        <p className="note note-error" role="alert">
          {item.message}
        </p>
      );
    case "crashed":
      return (
        <div className="note note-error" role="alert" data-testid="agent-crashed">
          <p>
            The agent exited{item.exitCode === null ? "" : ` with code ${item.exitCode}`}: {item.hint}
            {!item.restarting && " Start a new session below."}
          </p>
          {item.stderrTail && <pre className="stderr-tail">{item.stderrTail}</pre>}
        </div>
      );
    case "restarting":
      return (
        <p className="note" role="status">
          {item.cause === "agent_restarted" ? "The node's agent restarted" : "The agent exited"}: starting it again in{" "}
          {item.delaySeconds} s (attempt {item.attempt} of {item.limit}).
        </p>
      );
    case "resumed":
      return (
        <p className={`note ${item.contextLost ? "note-error" : ""}`} role="status">
          {item.contextLost
            ? "The agent is back, but it could not reload this conversation: it remembers nothing of the turns above."
            : "The agent is back and remembers the conversation."}
        </p>
      );
    case "stopped":
      return <p className="note">{STOPPED[item.reason] ?? "The session stopped."}</p>;
    case "run":
      return <RunProgress steps={item.steps} />;
    case "truncated":
      return <p className="note muted">A {item.role} message here was too large to keep whole (over 64 KiB) and is left out.</p>;
    case "gap":
      return (
        <p className="note muted">
          Older updates (after {item.after}, before {item.firstSeq}) are no longer kept on the node.
        </p>
      );
  }
});
