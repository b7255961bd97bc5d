import { type FormEvent, useEffect, useId, useRef, useState } from "react";

import { api } from "../api/client";
import type { Credential, CredentialKind } from "../api/types";
import { ConfirmButton, EmptyState, ErrorNote, Loading, PageHeader, When } from "../components/ui";
import { useLoad, useTitle } from "../hooks";

const SAVED_NOTE_MS = 8000;

export const KINDS: { kind: CredentialKind; label: string; help: string; placeholder: string }[] = [
  {
    kind: "hetzner",
    label: "Hetzner Cloud API token",
    help: "Nodes are created in your own Hetzner project. In the Hetzner Cloud Console open your project → Security → API tokens and create a Read & Write token. SAM checks it with Hetzner before saving it.",
    placeholder: "64 characters from the Hetzner Cloud Console",
  },
  {
    kind: "anthropic",
    label: "Anthropic key",
    help: "Used by Claude Code inside your workspaces: set it under Agent above.",
    placeholder: "sk-ant-api… or sk-ant-oat…",
  },
  {
    kind: "openai",
    label: "OpenAI API key",
    help: "Used by agents that talk to OpenAI models.",
    placeholder: "sk-…",
  },
];

// The generic form adds these; the Anthropic key has its own section (Agent).
const ADDABLE = KINDS.filter((k) => k.kind !== "anthropic");

export function kindLabel(kind: string): string {
  return KINDS.find((k) => k.kind === kind)?.label ?? kind;
}

export function SettingsScreen() {
  useTitle("Settings");
  const credentials = useLoad(() => api.credentials(), []);
  const initialKind = new URLSearchParams(window.location.search).get("kind");
  return (
    <>
      <PageHeader title="Settings">
        <p className="muted">Credentials are encrypted at rest and never shown again after you save them.</p>
      </PageHeader>
      <section className="card" id="agent" aria-labelledby="agent-heading">
        <h2 id="agent-heading">Agent</h2>
        {credentials.state === "loading" && <Loading what="the agent key" />}
        {credentials.data && (
          <AgentKey
            credentials={credentials.data}
            focus={initialKind === "anthropic"}
            onChange={credentials.reload}
          />
        )}
      </section>
      <section className="card" aria-labelledby="credentials-heading">
        <h2 id="credentials-heading">Credentials</h2>
        {credentials.state === "loading" && <Loading what="credentials" />}
        {credentials.state === "error" && <ErrorNote error={credentials.error} onRetry={() => void credentials.reload()} />}
        {credentials.data && <CredentialList credentials={credentials.data} onChange={credentials.reload} />}
      </section>
      <section className="card" aria-labelledby="add-credential-heading">
        <h2 id="add-credential-heading">Add a credential</h2>
        <AddCredential
          initialKind={ADDABLE.some((k) => k.kind === initialKind) ? (initialKind as CredentialKind) : "hetzner"}
          onAdded={credentials.reload}
        />
      </section>
    </>
  );
}

function CredentialList({ credentials, onChange }: { credentials: Credential[]; onChange: () => Promise<void> }) {
  const [error, setError] = useState<unknown>(null);
  if (credentials.length === 0) {
    return (
      <EmptyState title="No credentials yet">
        <p className="muted">Add a Hetzner token to create cloud nodes. The coding agent's key goes under Agent, above.</p>
      </EmptyState>
    );
  }
  return (
    <>
      {error !== null && <ErrorNote error={error} />}
      <ul className="rows" aria-label="Stored credentials">
        {credentials.map((credential) => (
          <li key={credential.id} className="row" data-testid="credential">
            <div className="row-main">
              <strong>{kindLabel(credential.kind)}</strong>
              {credential.label && <span className="muted"> · {credential.label}</span>}
              <div className="muted small">
                <span className="mono" aria-label={`ends in ${credential.hint.replace("…", "")}`}>
                  {credential.hint}
                </span>{" "}
                · added <When iso={credential.created_at} />
              </div>
            </div>
            <ConfirmButton
              label="Delete"
              confirmLabel={`Delete ${kindLabel(credential.kind)}`}
              onConfirm={() => deleteCredential(credential.id, setError, onChange)}
            />
          </li>
        ))}
      </ul>
    </>
  );
}

function AddCredential({ initialKind, onAdded }: { initialKind: CredentialKind; onAdded: () => Promise<void> }) {
  const id = useId();
  const [kind, setKind] = useState<CredentialKind>(initialKind);
  const [label, setLabel] = useState("");
  const form = useSecretForm();
  const { error, saved, setSaved, busy } = form;
  const info = ADDABLE.find((k) => k.kind === kind)!;

  useEffect(() => {
    if (saved === null) return;
    const timer = setTimeout(() => setSaved(null), SAVED_NOTE_MS);
    return () => clearTimeout(timer);
  }, [saved]);

  const submit = (event: FormEvent) =>
    form.submit(
      event,
      `Paste the ${info.label.toLowerCase()} first.`,
      async (secret) => {
        const credential = await api.addCredential(kind, secret, label.trim());
        setLabel("");
        return `${kindLabel(credential.kind)} saved (${credential.hint}).`;
      },
      onAdded,
    );

  return (
    <form onSubmit={(event) => void submit(event)} noValidate className="form">
      <div className="field">
        <label htmlFor={`${id}-kind`}>Kind</label>
        <select id={`${id}-kind`} value={kind} onChange={(event) => setKind(event.target.value as CredentialKind)}>
          {ADDABLE.map((k) => (
            <option key={k.kind} value={k.kind}>
              {k.label}
            </option>
          ))}
        </select>
        <p className="hint">{info.help}</p>
      </div>
      <div className="field">
        <label htmlFor={`${id}-secret`}>{info.label}</label>
        <SecretInput
          form={form}
          id={`${id}-secret`}
          placeholder={info.placeholder}
          describedBy={error !== null ? `${id}-error` : undefined}
        />
      </div>
      <div className="field">
        <label htmlFor={`${id}-label`}>
          Label <span className="muted">(optional)</span>
        </label>
        <input
          id={`${id}-label`}
          value={label}
          maxLength={64}
          placeholder="e.g. personal project"
          onChange={(event) => setLabel(event.target.value)}
        />
      </div>
      {error !== null && (
        <div id={`${id}-error`}>
          <ErrorNote error={error} />
        </div>
      )}
      <SavedNote text={saved} />
      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={busy}>
          {busy ? (kind === "hetzner" ? "Checking with Hetzner…" : "Checking with OpenAI…") : "Save credential"}
        </button>
      </div>
    </form>
  );
}

/** The Anthropic key Claude Code uses (through SAM's model proxy: it never enters a
 * workspace), with an optional gateway base URL; checked with the upstream on save. */
function AgentKey({
  credentials,
  focus,
  onChange,
}: {
  credentials: Credential[];
  focus: boolean;
  onChange: () => Promise<void>;
}) {
  const id = useId();
  const [baseUrl, setBaseUrl] = useState("");
  const form = useSecretForm();
  const { error, setError, saved, setSaved, busy, secretRef } = form;
  // The newest one is what agent sessions use.
  const current = credentials.filter((c) => c.kind === "anthropic").at(-1);

  useEffect(() => {
    if (focus) secretRef.current?.focus();
  }, [focus]);

  const submit = (event: FormEvent) =>
    form.submit(
      event,
      "Paste your Anthropic API key or Claude Code OAuth token first.",
      async (secret) => {
        const credential = await api.addCredential("anthropic", secret, "", baseUrl.trim() || null);
        setBaseUrl("");
        return `Saved (${credential.hint}). Claude Code in your workspaces uses it from the next session.`;
      },
      onChange,
    );

  const intro = (
    <p className="muted">
      Claude Code in your workspaces reaches the model through SAM, which adds your key on the way out: the key never
      enters a workspace, so code the agent runs cannot read it.
    </p>
  );
  if (current) {
    return (
      <>
        {intro}
        <SavedNote text={saved} />
        {error !== null && <ErrorNote error={error} />}
        <div className="row" data-testid="agent-key">
          <div className="row-main">
            <strong>Anthropic key</strong> <span className="mono">{current.hint}</span>
            <div className="muted small">
              {current.base_url ? `through ${current.base_url}` : "straight to Anthropic"} · added{" "}
              <When iso={current.created_at} />
            </div>
          </div>
          <ConfirmButton
            label="Remove"
            confirmLabel="Remove the Anthropic key"
            onConfirm={() => {
              setSaved(null);
              return deleteCredential(current.id, setError, onChange);
            }}
          />
        </div>
      </>
    );
  }
  return (
    <form onSubmit={(event) => void submit(event)} noValidate className="form">
      {intro}
      <div className="field">
        <label htmlFor={`${id}-secret`}>Anthropic key</label>
        <SecretInput
          form={form}
          id={`${id}-secret`}
          placeholder="sk-ant-api… or sk-ant-oat…"
          describedBy={`${id}-secret-hint`}
        />
        <p className="hint" id={`${id}-secret-hint`}>
          An API key (sk-ant-api…, from console.anthropic.com → API keys) or a Claude Code OAuth token (sk-ant-oat…, from{" "}
          <code>claude setup-token</code>). SAM checks it with Anthropic before saving it.
        </p>
      </div>
      <div className="field">
        <label htmlFor={`${id}-base`}>
          Gateway base URL <span className="muted">(optional)</span>
        </label>
        <input
          id={`${id}-base`}
          type="url"
          inputMode="url"
          spellCheck={false}
          placeholder="https://gateway.example.com/anthropic"
          value={baseUrl}
          onChange={(event) => setBaseUrl(event.target.value)}
          aria-describedby={`${id}-base-hint`}
        />
        <p className="hint" id={`${id}-base-hint`}>
          Only if you reach Anthropic through a gateway of your own (https). With one, any key it issues is accepted.
        </p>
      </div>
      {error !== null && <ErrorNote error={error} />}
      <SavedNote text={saved} />
      <div className="form-actions">
        <button type="submit" className="button button-primary" disabled={busy}>
          {busy ? "Checking with Anthropic…" : "Check and save the key"}
        </button>
      </div>
    </form>
  );
}

/** A form that saves one pasted secret: the secret, its error or saved note, and submit. */
function useSecretForm() {
  const [secret, setSecret] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const secretRef = useRef<HTMLInputElement>(null);

  /** `save` stores the trimmed secret and says what was saved; `after` reloads the list. */
  const submit = async (
    event: FormEvent,
    missing: string,
    save: (secret: string) => Promise<string>,
    after: () => Promise<void>,
  ) => {
    event.preventDefault();
    setError(null);
    setSaved(null);
    if (!secret.trim()) {
      setError(new Error(missing));
      secretRef.current?.focus();
      return;
    }
    setBusy(true);
    try {
      const note = await save(secret.trim());
      setSecret("");
      setSaved(note);
      await after();
    } catch (failure) {
      setError(failure);
      secretRef.current?.focus();
    } finally {
      setBusy(false);
    }
  };
  return { secret, setSecret, error, setError, saved, setSaved, busy, secretRef, submit };
}

function SecretInput({
  form,
  id,
  placeholder,
  describedBy,
}: {
  form: ReturnType<typeof useSecretForm>;
  id: string;
  placeholder: string;
  describedBy: string | undefined;
}) {
  return (
    <input
      ref={form.secretRef}
      id={id}
      type="password"
      autoComplete="off"
      spellCheck={false}
      placeholder={placeholder}
      value={form.secret}
      onChange={(event) => form.setSecret(event.target.value)}
      aria-invalid={form.error !== null}
      aria-describedby={describedBy}
    />
  );
}

function SavedNote({ text }: { text: string | null }) {
  if (!text) return null;
  return (
    <p className="note note-good" role="status">
      {text}
    </p>
  );
}

/** Delete one credential and reload the list; a failure is shown through `setError`. */
async function deleteCredential(id: string, setError: (error: unknown) => void, reload: () => Promise<void>) {
  setError(null);
  try {
    await api.deleteCredential(id);
  } catch (failure) {
    setError(failure);
  }
  await reload();
}
