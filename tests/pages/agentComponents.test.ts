// The Agent tab's reusable components, rendered to HTML in Node (react-dom/server): what the
// user sees of an agent's markdown, diffs and tool calls, and what must never get through.
import { createElement } from "react";
import { renderToStaticMarkup } from "react-dom/server";
import { describe, expect, it } from "vitest";

import { DiffView } from "../../pages/src/agent/DiffView";
import { MarkdownText } from "../../pages/src/agent/Markdown";
import { ToolCard } from "../../pages/src/agent/ToolCard";

const markdown = (text: string) => renderToStaticMarkup(createElement(MarkdownText, { text }));

describe("the agent's markdown", () => {
  it("is rendered: emphasis, code, lists, links that open elsewhere", () => {
    const html = markdown("**bold** and `code`\n\n- one\n- two\n\n[docs](https://example.com/a)");
    expect(html).toContain("<strong>bold</strong>");
    expect(html).toContain("<code>code</code>");
    expect(html).toContain("<li>two</li>");
    expect(html).toContain('<a href="https://example.com/a" target="_blank" rel="noreferrer noopener">docs</a>');
  });

  it("never carries raw HTML or a script URL into the page", () => {
    const html = markdown('<script>alert(1)</script><img src=x onerror="alert(2)">\n\n[x](javascript:alert(3))');
    expect(html).not.toMatch(/<script|<img|onerror|javascript:/i);
  });
});

describe("a diff", () => {
  it("shows removed and added lines apart, with the file's path", () => {
    const html = renderToStaticMarkup(
      createElement(DiffView, { path: "/w/a.txt", oldText: "keep\nold\n", newText: "keep\nnew\n" }),
    );
    expect(html).toContain("/w/a.txt");
    expect(html).toContain('<span class="diff-line diff-del">-old</span>');
    expect(html).toContain('<span class="diff-line diff-add">+new</span>');
    expect(html).toContain('<span class="diff-line diff-same"> keep</span>');
    expect(html).not.toContain("new file");
  });

  it("of a new file says so", () => {
    const html = renderToStaticMarkup(createElement(DiffView, { path: "/w/b.txt", oldText: null, newText: "hi\n" }));
    expect(html).toContain("new file");
    expect(html).toContain("+hi");
  });
});

describe("a tool card", () => {
  it("shows the command, the status and the output", () => {
    const call = {
      toolCallId: "t1",
      title: "Run the tests",
      kind: "execute" as const,
      status: "failed" as const,
      rawInput: { command: "npm test" },
      content: [
        { type: "content" as const, content: { type: "text" as const, text: "1 failing" } },
        { type: "terminal" as const, terminalId: "term-1" },
      ],
    };
    const html = renderToStaticMarkup(createElement(ToolCard, { call }));
    expect(html).toContain('data-status="failed"');
    expect(html).toContain("$ npm test");
    expect(html).toContain(">Failed<");
    expect(html).toContain("1 failing");
    expect(html).toContain("read-only tab under Terminals");
  });
});
