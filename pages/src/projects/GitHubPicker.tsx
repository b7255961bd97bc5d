/**
 * New project's GitHub repository picker, shown when the deployment has the GitHub App: the
 * repositories the user's installations reach, then the chosen one's branches. Choosing
 * fills in the repository URL and default branch; typing a URL by hand still works.
 */

import { api } from "../api/client";
import type { GitHubBranch, GitHubRepository } from "../api/types";
import { ErrorNote, Loading } from "../components/ui";
import { useLoad } from "../hooks";

export function GitHubPicker({
  id,
  picked,
  onPick,
}: {
  id: string;
  picked: GitHubRepository | null;
  onPick: (repository: GitHubRepository | null) => void;
}) {
  const deployment = useLoad(() => api.deployment(), []);
  if (!deployment.data?.github_app) return null;
  return <Repositories id={id} picked={picked} onPick={onPick} />;
}

function Repositories({
  id,
  picked,
  onPick,
}: {
  id: string;
  picked: GitHubRepository | null;
  onPick: (repository: GitHubRepository | null) => void;
}) {
  const repositories = useLoad(() => api.githubRepositories(), []);
  const install = (
    <a href={api.githubInstallUrl} className="button button-small">
      Install the GitHub App
    </a>
  );
  if (repositories.state === "loading") return <Loading what="your GitHub repositories" />;
  if (repositories.state === "error") {
    return <ErrorNote error={repositories.error} onRetry={() => void repositories.reload()} />;
  }
  const found = repositories.data;
  if (found.length === 0) {
    return (
      <div className="field github-picker">
        <p className="hint">
          SAM's GitHub App reaches none of your repositories yet. Install it on your account or an organisation to
          pick a repository here (and to get pull requests from tasks). {install}
        </p>
      </div>
    );
  }
  return (
    <div className="field github-picker">
      <label htmlFor={`${id}-github`}>GitHub repository</label>
      <select
        id={`${id}-github`}
        value={picked?.full_name ?? ""}
        onChange={(event) => onPick(found.find((each) => each.full_name === event.target.value) ?? null)}
      >
        <option value="">Choose one, or enter a URL below</option>
        {found.map((repository) => (
          <option key={repository.full_name} value={repository.full_name}>
            {repository.full_name}
            {repository.private ? " (private)" : ""}
          </option>
        ))}
      </select>
      <p className="hint">The repositories SAM's GitHub App can reach for you. Another account? {install}</p>
    </div>
  );
}

/** The chosen GitHub repository's branches, as a select in place of the free-text field. */
export function BranchSelect({
  id,
  repository,
  branch,
  onChange,
}: {
  id: string;
  repository: GitHubRepository;
  branch: string;
  onChange: (branch: string) => void;
}) {
  const branches = useLoad(() => api.githubBranches(repository.owner, repository.name), [repository.full_name]);
  const names = branchNames(branches.data, repository.default_branch);
  return (
    <div className="field">
      <label htmlFor={`${id}-branch`}>Default branch</label>
      <select id={`${id}-branch`} name="default_branch" value={branch || repository.default_branch} onChange={(event) => onChange(event.target.value)}>
        {names.map((name) => (
          <option key={name} value={name}>
            {name}
          </option>
        ))}
      </select>
      {branches.state === "error" && <ErrorNote error={branches.error} onRetry={() => void branches.reload()} />}
    </div>
  );
}

/** The repository's default branch first (shown before the list has loaded), then the rest. */
export function branchNames(branches: GitHubBranch[] | undefined, defaultBranch: string): string[] {
  const others = (branches ?? []).map((each) => each.name).filter((name) => name !== defaultBranch);
  return [defaultBranch, ...others];
}
