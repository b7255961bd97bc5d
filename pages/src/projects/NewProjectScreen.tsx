/** A new project: a repository, a name, and the defaults its chats start with. */

import { type FormEvent, useId, useRef, useState } from "react";

import { PermissionModes } from "../agent/PermissionModes";
import type { PermissionMode } from "../agent/protocol";
import { ProviderFields, useProviderChoice } from "../components/ProviderChoice";
import { ErrorNote, PageHeader } from "../components/ui";
import { useTitle } from "../hooks";
import { Link, navigate } from "../router";
import type { GitHubRepository, NewProject } from "../api/types";
import { projectsApi } from "./api";
import { BranchSelect, GitHubPicker } from "./GitHubPicker";

// The API's own limit (a project's name follows worker/workspaces/spec.py MAX_NAME_CHARS):
// longer names are refused, never cut.
export const MAX_PROJECT_NAME_CHARS = 64;

export function NewProjectScreen() {
  useTitle("New project");
  const id = useId();
  const [repository, setRepository] = useState("");
  const [name, setName] = useState("");
  const [branch, setBranch] = useState("");
  const [picked, setPicked] = useState<GitHubRepository | null>(null);
  const [mode, setMode] = useState<PermissionMode>("ask");
  const choice = useProviderChoice();
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const repositoryRef = useRef<HTMLInputElement>(null);
  const nameTooLong = name.trim().length > MAX_PROJECT_NAME_CHARS;

  const pick = (repository: GitHubRepository | null) => {
    setPicked(repository);
    setRepository(repository?.clone_url ?? "");
    setBranch(repository?.default_branch ?? "");
  };

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setError(null);
    if (!repository.trim()) {
      setError(new Error("Enter the repository's URL (or, for a local node, a local path)."));
      repositoryRef.current?.focus();
      return;
    }
    if (nameTooLong) {
      setError(new Error(`The name is ${name.trim().length} characters long; use at most ${MAX_PROJECT_NAME_CHARS}.`));
      return;
    }
    const project: NewProject = { repository: repository.trim(), provider: choice.provider, permission_mode: mode };
    if (name.trim()) project.name = name.trim();
    if (branch.trim()) project.default_branch = branch.trim();
    if (choice.provider === "hetzner" && choice.size.trim()) project.node_size = choice.size.trim();
    setBusy(true);
    try {
      const created = await projectsApi.create(project);
      navigate(`/projects/${created.id}`);
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };

  return (
    <>
      <PageHeader title="New project">
        <p className="muted">
          <Link href="/">Projects</Link> / new
        </p>
      </PageHeader>
      <form className="card form" onSubmit={(event) => void submit(event)} noValidate>
        <GitHubPicker id={id} picked={picked} onPick={pick} />
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
            onChange={(event) => {
              // A URL typed by hand is no longer the picked repository, nor its branch.
              if (picked) pick(null);
              setRepository(event.target.value);
            }}
            aria-describedby={`${id}-repository-hint`}
            required
          />
          <p className="hint" id={`${id}-repository-hint`}>
            An https, ssh or git URL; on a local node also an absolute path such as <code>/home/you/project</code>.
          </p>
        </div>
        <div className="field-row">
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
              {name.trim().length} of at most {MAX_PROJECT_NAME_CHARS} characters
            </p>
          </div>
          {picked ? (
            <BranchSelect id={id} repository={picked} branch={branch} onChange={setBranch} />
          ) : (
            <div className="field">
              <label htmlFor={`${id}-branch`}>
                Default branch <span className="muted">(optional)</span>
              </label>
              <input
                id={`${id}-branch`}
                name="default_branch"
                autoCapitalize="off"
                spellCheck={false}
                placeholder="the repository's"
                value={branch}
                onChange={(event) => setBranch(event.target.value)}
              />
            </div>
          )}
        </div>
        <ProviderFields id={id} choice={choice} />
        <PermissionModes legend="The agent's permissions in new chats" mode={mode} onChange={setMode} />
        {error !== null && <ErrorNote error={error} />}
        <div className="form-actions">
          <button type="submit" className="button button-primary" disabled={busy}>
            {busy ? "Creating…" : "Create project"}
          </button>
          <Link href="/" className="button button-quiet">
            Cancel
          </Link>
        </div>
      </form>
    </>
  );
}
