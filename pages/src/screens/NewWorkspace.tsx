import { type FormEvent, useId, useRef, useState } from "react";

import { api } from "../api/client";
import type { NewWorkspace, Provider } from "../api/types";
import { ErrorNote, PageHeader } from "../components/ui";
import { useTitle } from "../hooks";
import { Link, navigate } from "../router";

const PROVIDERS: { value: Provider; label: string; help: string }[] = [
  {
    value: "local",
    label: "Local node",
    help: "An agent on the machine that runs sam dev. No cloud account needed; a local path works too.",
  },
  {
    value: "hetzner",
    label: "Hetzner Cloud",
    help: "A VM in your own Hetzner project (needs a Hetzner token in Settings).",
  },
];

function defaultProvider(): Provider {
  return window.location.hostname.endsWith("localhost") ? "local" : "hetzner";
}

export function NewWorkspaceScreen() {
  useTitle("New workspace");
  const id = useId();
  const [repository, setRepository] = useState("");
  const [branch, setBranch] = useState("");
  const [name, setName] = useState("");
  const [provider, setProvider] = useState<Provider>(defaultProvider);
  const [size, setSize] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const repositoryRef = useRef<HTMLInputElement>(null);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (!repository.trim()) {
      setError(new Error("Enter a repository URL (or, for a local node, a local path)."));
      repositoryRef.current?.focus();
      return;
    }
    const spec: NewWorkspace = { repository: repository.trim(), provider };
    if (branch.trim()) spec.branch = branch.trim();
    if (name.trim()) spec.name = name.trim();
    if (provider === "hetzner" && size.trim()) spec.size = size.trim();
    setBusy(true);
    try {
      const workspace = await api.createWorkspace(spec);
      navigate(`/workspaces/${workspace.id}`);
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };

  return (
    <>
      <PageHeader title="New workspace">
        <p className="muted">
          <Link href="/">Workspaces</Link> / new
        </p>
      </PageHeader>
      <form className="card form" onSubmit={(event) => void submit(event)} noValidate>
        <div className="field">
          <label htmlFor={`${id}-repository`}>Repository</label>
          <input
            ref={repositoryRef}
            id={`${id}-repository`}
            name="repository"
            inputMode="url"
            autoCapitalize="off"
            spellCheck={false}
            placeholder="https://github.com/you/project.git"
            value={repository}
            onChange={(event) => setRepository(event.target.value)}
            aria-describedby={`${id}-repository-hint`}
            required
          />
          <p className="hint" id={`${id}-repository-hint`}>
            An https, ssh or git URL; on a local node also an absolute path such as <code>/home/you/project</code>.
          </p>
        </div>
        <div className="field-row">
          <div className="field">
            <label htmlFor={`${id}-branch`}>
              Branch <span className="muted">(optional)</span>
            </label>
            <input
              id={`${id}-branch`}
              name="branch"
              autoCapitalize="off"
              spellCheck={false}
              placeholder="the default branch"
              value={branch}
              onChange={(event) => setBranch(event.target.value)}
            />
          </div>
          <div className="field">
            <label htmlFor={`${id}-name`}>
              Name <span className="muted">(optional)</span>
            </label>
            <input
              id={`${id}-name`}
              name="name"
              maxLength={64}
              placeholder="from the repository"
              value={name}
              onChange={(event) => setName(event.target.value)}
            />
          </div>
        </div>
        <fieldset className="field">
          <legend>Where it runs</legend>
          <div className="choices">
            {PROVIDERS.map((option) => (
              <label key={option.value} className="choice">
                <input
                  type="radio"
                  name="provider"
                  value={option.value}
                  checked={provider === option.value}
                  onChange={() => setProvider(option.value)}
                />
                <span>
                  <strong>{option.label}</strong>
                  <span className="muted small block">{option.help}</span>
                </span>
              </label>
            ))}
          </div>
        </fieldset>
        {provider === "hetzner" && (
          <div className="field">
            <label htmlFor={`${id}-size`}>
              Server type <span className="muted">(optional)</span>
            </label>
            <input
              id={`${id}-size`}
              name="size"
              autoCapitalize="off"
              spellCheck={false}
              placeholder="e.g. cx22"
              value={size}
              onChange={(event) => setSize(event.target.value)}
              aria-describedby={`${id}-size-hint`}
            />
            <p className="hint" id={`${id}-size-hint`}>
              A Hetzner server type. Empty: the cheapest shared type that fits.
            </p>
          </div>
        )}
        {error !== null && <ErrorNote error={error} />}
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={busy}>
            {busy ? "Creating…" : "Create workspace"}
          </button>
          <Link href="/" className="button button-quiet">
            Cancel
          </Link>
        </div>
      </form>
    </>
  );
}
