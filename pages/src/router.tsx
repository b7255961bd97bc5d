/**
 * A small history router: the app has a handful of screens, so a path → screen match is
 * all it needs. Links are real <a href> elements (open in a new tab, copy link address).
 */

import { type AnchorHTMLAttributes, type MouseEvent, useSyncExternalStore } from "react";

const listeners = new Set<() => void>();

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  window.addEventListener("popstate", listener);
  return () => {
    listeners.delete(listener);
    window.removeEventListener("popstate", listener);
  };
}

export function navigate(path: string, options: { replace?: boolean } = {}): void {
  if (path === window.location.pathname + window.location.search) return;
  if (options.replace) window.history.replaceState(null, "", path);
  else window.history.pushState(null, "", path);
  window.scrollTo(0, 0);
  for (const listener of listeners) listener();
}

export function usePath(): string {
  return useSyncExternalStore(subscribe, () => window.location.pathname);
}

export type Route =
  | { screen: "projects" }
  | { screen: "new-project" }
  | { screen: "project"; id: string; chatId: string | null; tasks?: true }
  | { screen: "workspaces" }
  | { screen: "new-workspace" }
  | { screen: "workspace"; id: string }
  | { screen: "nodes" }
  | { screen: "node"; id: string }
  | { screen: "settings" }
  | { screen: "not-found" };

export function match(path: string): Route {
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts.length === 0) return { screen: "projects" };
  const [first, second, ...rest] = parts;
  if (first === "projects" && second !== undefined && second !== "new") {
    // /projects/{id}, /projects/{id}/tasks and /projects/{id}/chats/{chatId}
    if (rest.length === 0) return { screen: "project", id: second, chatId: null };
    if (rest.length === 1 && rest[0] === "tasks") return { screen: "project", id: second, chatId: null, tasks: true };
    if (rest.length === 2 && rest[0] === "chats") return { screen: "project", id: second, chatId: rest[1] };
    return { screen: "not-found" };
  }
  if (rest.length > 0) return { screen: "not-found" };
  if (first === "projects") return second === undefined ? { screen: "projects" } : { screen: "new-project" };
  if (first === "workspaces") {
    if (second === undefined) return { screen: "workspaces" };
    if (second === "new") return { screen: "new-workspace" };
    return { screen: "workspace", id: second };
  }
  if (first === "nodes") return second === undefined ? { screen: "nodes" } : { screen: "node", id: second };
  if (first === "settings" && second === undefined) return { screen: "settings" };
  return { screen: "not-found" };
}

export function Link(props: AnchorHTMLAttributes<HTMLAnchorElement> & { href: string }) {
  const { onClick, ...rest } = props;
  const follow = (event: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(event);
    if (
      event.defaultPrevented ||
      event.button !== 0 ||
      event.metaKey ||
      event.ctrlKey ||
      event.shiftKey ||
      event.altKey ||
      props.target
    ) {
      return;
    }
    event.preventDefault();
    navigate(props.href);
  };
  return <a {...rest} onClick={follow} />;
}
