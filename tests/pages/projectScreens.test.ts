// The project screens' pure parts: where each address leads (pages/src/router.tsx) and a
// project's last activity in the Projects list (pages/src/projects/ProjectsScreen.tsx).
import { describe, expect, it } from "vitest";

import type { Project } from "../../pages/src/api/types";
import type { ChatInfo } from "../../pages/src/projects/protocol";
import { lastActivity } from "../../pages/src/projects/ProjectsScreen";
import { match } from "../../pages/src/router";
import { golden } from "./golden";

describe("addresses", () => {
  it.each([
    ["/", { screen: "projects" }],
    ["/projects", { screen: "projects" }],
    ["/projects/new", { screen: "new-project" }],
    ["/projects/p1", { screen: "project", id: "p1", chatId: null }],
    ["/projects/p1/chats/c1", { screen: "project", id: "p1", chatId: "c1" }],
    ["/workspaces", { screen: "workspaces" }],
    ["/workspaces/new", { screen: "new-workspace" }],
    ["/projects/p1/chats", { screen: "not-found" }],
    ["/projects/p1/runs/r1", { screen: "not-found" }],
    ["/projects/p1/chats/c1/more", { screen: "not-found" }],
  ])("%s", (path, route) => {
    expect(match(path)).toEqual(route);
  });
});

describe("a project's last activity", () => {
  const project = { id: "p1", updated_at: "2026-12-04T09:00:00Z" } as Project;
  const chat = (golden("chat", "project_chat").frame as unknown as { chat: ChatInfo }).chat;

  it("is its newest chat's, when it has chats", () => {
    const older = { ...chat, id: "c0", last_activity_at: "2026-12-04T09:30:00Z" };
    expect(lastActivity(project, [older, chat])).toBe(chat.last_activity_at);
  });

  it("is its own last change without chats, and other projects' chats do not count", () => {
    expect(lastActivity(project, [{ ...chat, project_id: "p2" }])).toBe(project.updated_at);
  });
});
