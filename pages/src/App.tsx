import { Suspense, lazy, useCallback, useEffect, useRef, useState } from "react";

import { ApiError, api, setUnauthorizedHandler } from "./api/client";
import type { User } from "./api/types";
import { ErrorNote, Loading } from "./components/ui";
import { Link, match, usePath } from "./router";
import { NewProjectScreen } from "./projects/NewProjectScreen";
import { ProjectScreen } from "./projects/ProjectScreen";
import { ProjectsScreen } from "./projects/ProjectsScreen";
import { NewWorkspaceScreen } from "./screens/NewWorkspace";
import { NodeScreen } from "./screens/Node";
import { NodesScreen } from "./screens/Nodes";
import { NotFoundScreen } from "./screens/NotFound";
import { SettingsScreen } from "./screens/Settings";
import { SignInScreen } from "./screens/SignIn";
import { signInCheck, takeSignedInUser } from "./signInCheck";
import { WorkspacesScreen } from "./screens/Workspaces";

// The workspace page brings xterm.js (most of the app's code): loaded when first opened, so
// the other screens (a project chat above all) start without parsing it.
const WorkspaceScreen = lazy(() => import("./screens/Workspace").then((module) => ({ default: module.WorkspaceScreen })));

type Auth =
  | { state: "loading" }
  | { state: "signed-out" }
  | { state: "failed"; error: unknown }
  | { state: "signed-in"; user: User };

function firstAuth(): Auth {
  const user = takeSignedInUser();
  return user ? { state: "signed-in", user } : { state: "loading" };
}

export function App() {
  const [auth, setAuth] = useState<Auth>(firstAuth);

  const check = useCallback(async () => {
    setAuth({ state: "loading" });
    try {
      setAuth({ state: "signed-in", user: await signInCheck() });
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) setAuth({ state: "signed-out" });
      else setAuth({ state: "failed", error });
    }
  }, []);

  useEffect(() => {
    if (auth.state === "loading") void check(); // not when the started check had answered
    setUnauthorizedHandler(() => setAuth({ state: "signed-out" }));
    return () => setUnauthorizedHandler(null);
  }, [check]);

  switch (auth.state) {
    case "loading":
      return (
        <main className="centered">
          <Loading what="SAM" />
        </main>
      );
    case "failed":
      return (
        <main className="centered">
          <div className="card narrow">
            <h1>SAM cannot start</h1>
            <ErrorNote error={auth.error} onRetry={() => void check()} />
          </div>
        </main>
      );
    case "signed-out":
      return <SignInScreen onSignedIn={(user) => setAuth({ state: "signed-in", user })} />;
    case "signed-in":
      return <Shell user={auth.user} onSignedOut={() => setAuth({ state: "signed-out" })} />;
  }
}

const NAV = [
  { href: "/", label: "Projects", screens: ["projects", "new-project", "project"] },
  { href: "/workspaces", label: "Workspaces", screens: ["workspaces", "new-workspace", "workspace"] },
  { href: "/nodes", label: "Nodes", screens: ["nodes", "node"] },
  { href: "/settings", label: "Settings", screens: ["settings"] },
];

function Shell({ user, onSignedOut }: { user: User; onSignedOut: () => void }) {
  const path = usePath();
  const route = match(path);
  const [signOutError, setSignOutError] = useState<unknown>(null);
  const first = useRef(true);

  // After a navigation, put keyboard and screen-reader focus on the new screen's heading.
  useEffect(() => {
    if (first.current) {
      first.current = false;
      return;
    }
    document.getElementById("page-title")?.focus();
  }, [path]);

  const signOut = async () => {
    try {
      await api.logout();
      onSignedOut();
    } catch (error) {
      setSignOutError(error);
    }
  };

  return (
    <div className={`shell ${route.screen === "workspace" || route.screen === "project" ? "shell-wide" : ""}`}>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="topbar">
        <Link href="/" className="brand" aria-label="SAM home">
          <img src="/favicon.svg" alt="" width="24" height="24" />
          <span>SAM</span>
        </Link>
        <nav aria-label="Main">
          <ul>
            {NAV.map((item) => (
              <li key={item.href}>
                <Link href={item.href} aria-current={item.screens.includes(route.screen) ? "page" : undefined}>
                  {item.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="account">
          <span className="account-login" data-testid="signed-in-user" title={user.name ?? user.login}>
            {user.avatar_url && <img src={user.avatar_url} alt="" width="24" height="24" />}
            {user.login}
          </span>
          <button type="button" className="button button-quiet button-small" onClick={() => void signOut()}>
            Sign out
          </button>
        </div>
      </header>
      {signOutError !== null && (
        <div className="banner">
          <ErrorNote error={signOutError} />
        </div>
      )}
      <main id="main" className="content">
        {route.screen === "projects" && <ProjectsScreen />}
        {route.screen === "new-project" && <NewProjectScreen />}
        {route.screen === "project" && <ProjectScreen key={route.id} id={route.id} chatId={route.chatId} tasks={route.tasks ?? false} />}
        {route.screen === "workspaces" && <WorkspacesScreen />}
        {route.screen === "new-workspace" && <NewWorkspaceScreen />}
        {route.screen === "workspace" && (
          <Suspense fallback={<Loading what="the workspace" />}>
            <WorkspaceScreen key={route.id} id={route.id} />
          </Suspense>
        )}
        {route.screen === "nodes" && <NodesScreen />}
        {route.screen === "node" && <NodeScreen key={route.id} id={route.id} />}
        {route.screen === "settings" && <SettingsScreen />}
        {route.screen === "not-found" && <NotFoundScreen />}
      </main>
    </div>
  );
}
