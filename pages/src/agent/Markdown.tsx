/**
 * The agent's answer as markdown (react-markdown and its parsers, a third of the app's
 * code): a chunk of its own, loaded beside a page's first requests (markdownLoader.ts).
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
