/**
 * The sign-in check (`GET /api/auth/me`), started as the script starts (boot.ts) rather than
 * once React has first rendered; App's first check takes it, any later one asks again.
 */

import { api } from "./api/client";
import type { User } from "./api/types";
import { Started } from "./started";

let started: Started<User> | null = null;

export function startSignInCheck(): void {
  started = new Started(api.me());
}

/** The signed-in user, if the started check has answered already: the first render shows
 * the app at once. */
export function takeSignedInUser(): User | null {
  const user = started?.now ?? null;
  if (user) started = null;
  return user;
}

export function signInCheck(): Promise<User> {
  const first = started?.promise;
  started = null;
  return first ?? api.me();
}
