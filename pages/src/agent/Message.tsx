/**
 * A conversation's messages: the user's prompt, the agent's answer as markdown, and its
 * thinking, collapsed. Shared by the workspace's Agent tab and the project chat.
 */

import { useMarkdown } from "./markdownLoader";

export function UserMessage({ text }: { text: string }) {
  return (
    <div className="message message-user" data-testid="user-message">
      <span className="message-who">You</span>
      <p className="message-text">{text}</p>
    </div>
  );
}

export function AgentMessage({ text, streaming }: { text: string; streaming: boolean }) {
  const Markdown = useMarkdown();
  return (
    <div className="message message-agent" data-testid="agent-message" aria-busy={streaming}>
      <span className="message-who">Agent</span>
      {Markdown ? <Markdown text={text} /> : <p className="message-text">{text}</p>}
    </div>
  );
}

export function Thought({ text }: { text: string }) {
  return (
    <details className="message message-thought" data-testid="agent-thought">
      <summary>Thinking</summary>
      <p className="message-text muted">{text}</p>
    </details>
  );
}
