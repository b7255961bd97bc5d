/**
 * A conversation's messages: the user's prompt, the agent's answer as markdown, and its
 * thinking, collapsed. Shared by the workspace's Agent tab and the project chat.
 */

import Markdown from "react-markdown";

/** Markdown as text only: raw HTML in the agent's answer is dropped, never rendered. */
export function MarkdownText({ text }: { text: string }) {
  return (
    <div className="markdown">
      <Markdown
        skipHtml
        components={{
          a: ({ href, children }) => (
            <a href={href} target="_blank" rel="noreferrer noopener">
              {children}
            </a>
          ),
        }}
      >
        {text}
      </Markdown>
    </div>
  );
}

export function UserMessage({ text }: { text: string }) {
  return (
    <div className="message message-user" data-testid="user-message">
      <span className="message-who">You</span>
      <p className="message-text">{text}</p>
    </div>
  );
}

export function AgentMessage({ text, streaming }: { text: string; streaming: boolean }) {
  return (
    <div className="message message-agent" data-testid="agent-message" aria-busy={streaming}>
      <span className="message-who">Agent</span>
      <MarkdownText text={text} />
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
