/**
 * The project and chat routes of the API (docs/protocols/project-chat.md), same-origin with
 * the session cookie like the rest of api/client.ts.
 */

import { request } from "../api/client";
import type { NewProject, Project, ProjectChanges } from "../api/types";
import { type ChatInfo, type ChatMessage, type MessagePage, checkMessage } from "./protocol";

const enc = encodeURIComponent;
const chatPath = (projectId: string, chatId: string) => `/api/projects/${enc(projectId)}/chats/${enc(chatId)}`;

/** Where a history page starts: the newest (`{}`), or just before or after a seq. */
export type PageCursor = { before?: number; after?: number };

export const projectsApi = {
  projects: () => request<{ projects: Project[] }>("GET", "/api/projects").then((r) => r.projects),
  project: (id: string) => request<Project>("GET", `/api/projects/${enc(id)}`),
  create: (project: NewProject) => request<Project>("POST", "/api/projects", project),
  change: (id: string, change: ProjectChanges) => request<Project>("PATCH", `/api/projects/${enc(id)}`, change),
  remove: (id: string) => request<void>("DELETE", `/api/projects/${enc(id)}`),

  /** Every chat of every project of the user (the D1 index: counts may lag a little). */
  allChats: () => request<{ chats: ChatInfo[] }>("GET", "/api/chats").then((r) => r.chats),
  chats: (projectId: string) =>
    request<{ chats: ChatInfo[] }>("GET", `/api/projects/${enc(projectId)}/chats`).then((r) => r.chats),
  chat: (projectId: string, chatId: string) => request<ChatInfo>("GET", chatPath(projectId, chatId)),
  newChat: (projectId: string, message: string) =>
    request<ChatInfo>("POST", `/api/projects/${enc(projectId)}/chats`, { message }),
  /** One page of a chat's history, in seq order. */
  messages: async (projectId: string, chatId: string, cursor: PageCursor, limit: number): Promise<MessagePage> => {
    const query = new URLSearchParams({ limit: String(limit) });
    if (cursor.before !== undefined) query.set("before", String(cursor.before));
    if (cursor.after !== undefined) query.set("after", String(cursor.after));
    const page = await request<MessagePage>("GET", `${chatPath(projectId, chatId)}/messages?${query}`);
    return { messages: page.messages.map(checkMessage), has_more: page.has_more };
  },
  /** A follow-up: the user's message as the chat keeps it. */
  send: (projectId: string, chatId: string, text: string) =>
    request<ChatMessage>("POST", `${chatPath(projectId, chatId)}/messages`, { text }),
  stop: (projectId: string, chatId: string) => request<ChatInfo>("POST", `${chatPath(projectId, chatId)}/stop`),
  answer: (projectId: string, chatId: string, requestId: string, optionId: string) =>
    request<void>("POST", `${chatPath(projectId, chatId)}/permissions/${enc(requestId)}`, { option_id: optionId }),
};

/** The viewer WebSocket's address: a chat's (from after `after`), or the project's list. */
export function viewerUrl(projectId: string, chat?: { id: string; after: number }): string {
  const url = new URL(`/api/projects/${enc(projectId)}/ws`, window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  if (chat) {
    url.searchParams.set("chat", chat.id);
    url.searchParams.set("after", String(chat.after));
  }
  return url.toString();
}
