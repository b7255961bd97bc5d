/** The chat's text box: a first message (New chat) or a follow-up. Ctrl/⌘+Enter sends. */

import { type FormEvent, useId, useState } from "react";

import { MAX_PROMPT_CHARS } from "../agent/protocol";

export function Composer({
  label,
  placeholder,
  action,
  onSend,
}: {
  label: string;
  placeholder: string;
  action: string;
  /** true: sent (the box empties); false: not (the text stays to try again). */
  onSend: (text: string) => Promise<boolean>;
}) {
  const id = useId();
  const [text, setText] = useState("");
  const [sending, setSending] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (sending || !text.trim()) return;
    setSending(true);
    try {
      if (await onSend(text)) setText("");
    } finally {
      setSending(false);
    }
  };

  return (
    <form className="agent-prompt chat-composer" onSubmit={(event) => void submit(event)}>
      <label className="visually-hidden" htmlFor={id}>
        {label}
      </label>
      <textarea
        id={id}
        data-testid="chat-composer"
        rows={3}
        maxLength={MAX_PROMPT_CHARS}
        placeholder={placeholder}
        value={text}
        onChange={(event) => setText(event.target.value)}
        onKeyDown={(event) => {
          if (event.key === "Enter" && (event.metaKey || event.ctrlKey)) event.currentTarget.form?.requestSubmit();
        }}
      />
      <button type="submit" className="button button-primary" disabled={sending || !text.trim()}>
        {sending ? "Sending…" : action}
      </button>
    </form>
  );
}
