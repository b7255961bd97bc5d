import { type FormEvent, useId, useRef, useState } from "react";

import { api } from "../api/client";
import type { NewWorkspace } from "../api/types";
import { ProviderFields, useProviderChoice } from "../components/ProviderChoice";
import { ErrorNote, PageHeader } from "../components/ui";
import { useTitle } from "../hooks";
import { Link, navigate } from "../router";

// The API's own limit (worker/workspaces/spec.py MAX_NAME_CHARS): longer names are refused, never cut.
const MAX_NAME_CHARS = 64;

export function NewWorkspaceScreen() {
  useTitle("New workspace");
  const id = useId();
  const [repository, setRepository] = useState("");
  const [branch, setBranch] = useState("");
  const [name, setName] = useState("");
  const choice = useProviderChoice();
  const { provider, size } = choice;
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const repositoryRef = useRef<HTMLInputElement>(null);
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
          <Link href="/workspaces">Workspaces</Link> / new
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
        <ProviderFields id={id} choice={choice} />
        {error !== null && <ErrorNote error={error} />}
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={busy}>
            {busy ? "Creating…" : "Create workspace"}
          </button>
          <Link href="/workspaces" className="button button-quiet">
            Cancel
          </Link>
        </div>
      </form>
    </>
  );
}
