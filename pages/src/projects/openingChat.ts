/**
 * The chat a page load opens on (/projects/{p}/chats/{c}): what a user waits for first.
 *
 *   script starts ─┬─ GET /api/auth/me              (the sign-in check)
 *                  └─ GET the chat + its newest page (not after the check: beside it)
 *   chat's page on screen ─▶ the project, its chat list and the list's socket
 *
 * The chat's requests leave before sign-in is known: signed out, they fail with 401 and are
 * simply asked again once the user has signed in. The screen's secondary data waits until
 * the chat's first page is on screen, so the server answers the chat's requests first.
 */

import { match } from "../router";
import { Started } from "../started";
import { projectsApi } from "./api";
import type { ChatInfo, MessagePage } from "./protocol";

/** Messages of the page a chat opens on: a screenful (a shorter one is filled from the page
 * before), few enough to render at once. */
export const FIRST_PAGE_MESSAGES = 50;
/** Messages per older page, read as the reader scrolls up. */
export const PAGE_MESSAGES = 200;

export type OpenedChat = [ChatInfo, MessagePage];

interface Opening {
  projectId: string;
  chatId: string;
  /** The requests started with the page; null once a ChatView took them. */
  requests: Started<OpenedChat> | null;
  /** Resolves once the chat's first page is on screen (or the chat view is gone). */
  shown: Promise<void>;
  show: () => void;
}

let opening: Opening | null = null;

function chatAndNewestPage(projectId: string, chatId: string): Promise<OpenedChat> {
  return Promise.all([projectsApi.chat(projectId, chatId), projectsApi.messages(projectId, chatId, {}, FIRST_PAGE_MESSAGES)]);
}

/** At the script's start: if `path` is a chat's, ask for the chat and its newest page now. */
export function startOpeningChat(path: string): void {
  const route = match(path);
  if (route.screen !== "project" || route.chatId === null) return;
  const requests = new Started(chatAndNewestPage(route.id, route.chatId));
  let show = () => {};
  const shown = new Promise<void>((resolve) => (show = resolve));
  opening = { projectId: route.id, chatId: route.chatId, requests, shown, show };
}

function openingOf(projectId: string, chatId: string): Opening | null {
  return opening?.projectId === projectId && opening.chatId === chatId ? opening : null;
}

/** The chat and its newest page: the requests the page load started, the first time (a
 * failed one, as before sign-in, is asked again), else fresh ones. */
export function openChat(projectId: string, chatId: string): Promise<OpenedChat> {
  const mine = openingOf(projectId, chatId);
  const started = mine?.requests;
  if (!mine || !started) return chatAndNewestPage(projectId, chatId);
  mine.requests = null;
  return started.promise.catch(() => chatAndNewestPage(projectId, chatId));
}

/** The chat and its newest page if the page load's requests have answered already (taken:
 * the chat view renders them in its first render, without awaiting). */
export function takeOpenedChat(projectId: string, chatId: string): OpenedChat | null {
  const mine = openingOf(projectId, chatId);
  const opened = mine?.requests?.now ?? null;
  if (mine && opened) mine.requests = null;
  return opened;
}

/** The chat's first page is on screen, or its view is gone: the secondary data may load. */
export function openingChatShown(projectId: string, chatId: string): void {
  openingOf(projectId, chatId)?.show();
}

/** When the project screen showing `chatId` (or none) may load its secondary data: at once,
 * unless the page load opened on that chat and it is not on screen yet. */
export function afterOpeningChat(projectId: string, chatId: string | null): Promise<void> {
  return (chatId && openingOf(projectId, chatId)?.shown) || Promise.resolve();
}
