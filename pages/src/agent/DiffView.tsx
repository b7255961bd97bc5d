/** An ACP `diff` (path, oldText, newText) shown as a unified diff: what the agent changed. */

import { structuredPatch } from "diff";

const CONTEXT_LINES = 3;

export function DiffView({ path, oldText, newText }: { path: string; oldText: string | null; newText: string }) {
  const patch = structuredPatch(path, path, oldText ?? "", newText, "", "", { context: CONTEXT_LINES });
  return (
    <figure className="diff" data-testid="diff">
      <figcaption className="mono">
        {oldText === null || oldText === undefined ? "new file " : ""}
        {path}
      </figcaption>
      <pre className="diff-lines">
        {patch.hunks.map((hunk) => (
          <span key={`${hunk.oldStart}-${hunk.newStart}`} className="diff-hunk">
            <span className="diff-line diff-at">{`@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`}</span>
            {hunk.lines.map((line, index) => (
              <span key={index} className={`diff-line ${lineClass(line)}`}>
                {line}
              </span>
            ))}
          </span>
        ))}
      </pre>
    </figure>
  );
}

function lineClass(line: string): string {
  if (line.startsWith("+")) return "diff-add";
  if (line.startsWith("-")) return "diff-del";
  return "diff-same";
}
