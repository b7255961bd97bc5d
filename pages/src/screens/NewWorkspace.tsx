import { type FormEvent, useEffect, useId, useRef, useState } from "react";

import { api } from "../api/client";
import type { NewWorkspace, Provider, ProviderOption } from "../api/types";
import { ErrorNote, PageHeader } from "../components/ui";
import { useLoad, useTitle } from "../hooks";
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
    help: "A VM in your own Hetzner project (needs a Hetzner API token in Settings).",
  },
];
// The API's own limit (worker/workspaces/spec.py MAX_NAME_CHARS): longer names are refused, never cut.
const MAX_NAME_CHARS = 64;

function defaultProvider(): Provider {
  return window.location.hostname.endsWith("localhost") ? "local" : "hetzner";
}

/** Why this deployment cannot serve `provider` (null: it can, or we do not know yet). */
function unavailable(options: ProviderOption[] | undefined, provider: Provider): string | null {
  const option = options?.find((each) => each.name === provider);
  return option && !option.available ? (option.reason ?? "Not available on this deployment.") : null;
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
  const offered = useLoad(() => api.deployment(), []);
  const options = offered.data?.providers;
  // The first provider this deployment can serve, once it has said which.
  useEffect(() => {
    if (options && unavailable(options, provider)) {
      const usable = options.find((option) => option.available);
      if (usable) setProvider(usable.name);
    }
  }, [options]);
  const nameTooLong = name.trim().length > MAX_NAME_CHARS;

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (!repository.trim()) {
      setError(new Error("Enter a repository URL (or, for a local node, a local path)."));
      repositoryRef.current?.focus();
      return;
    }
    if (nameTooLong) {
      setError(new Error(`The name is ${name.trim().length} characters long; use at most ${MAX_NAME_CHARS}.`));
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
              placeholder="from the repository"
              value={name}
              onChange={(event) => setName(event.target.value)}
              aria-invalid={nameTooLong}
              aria-describedby={`${id}-name-hint`}
            />
            <p className={`hint ${nameTooLong ? "hint-error" : ""}`} id={`${id}-name-hint`} aria-live="polite">
              {name.trim().length} of at most {MAX_NAME_CHARS} characters
            </p>
          </div>
        </div>
        <fieldset className="field">
          <legend>Where it runs</legend>
          <div className="choices">
            {PROVIDERS.map((option) => {
              const why = unavailable(options, option.value);
              return (
                <label key={option.value} className={`choice ${why ? "choice-disabled" : ""}`}>
                  <input
                    type="radio"
                    name="provider"
                    value={option.value}
                    checked={provider === option.value}
                    disabled={why !== null}
                    onChange={() => setProvider(option.value)}
                    aria-describedby={`${id}-${option.value}-help`}
                  />
                  <span>
                    <strong>{option.label}</strong>
                    <span className="muted small block" id={`${id}-${option.value}-help`}>
                      {why ? `Not available here: ${why}` : option.help}
                    </span>
                  </span>
                </label>
              );
            })}
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
