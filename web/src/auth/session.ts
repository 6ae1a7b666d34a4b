// Who is signed in, in this browser tab and across reloads.
//
// The bearer token lives in sessionStorage by default (gone when the tab closes) and in
// localStorage only when the person ticks "keep me signed in". A token passed as
// `#token=…` (what `enclii serve` can print) is taken once and removed from the address bar,
// so it never lands in history or a bookmark.

export type Session = { token: string; via: "token" | "oidc"; expiresAt?: number };

const KEY = "enclii.session";
type Listener = (s: Session | null) => void;
const listeners = new Set<Listener>();

function read(storage: Storage): Session | null {
  try {
    const raw = storage.getItem(KEY);
    if (!raw) return null;
    const parsed = JSON.parse(raw) as Session;
    if (typeof parsed.token !== "string" || !parsed.token) return null;
    if (parsed.expiresAt && parsed.expiresAt < Date.now()) {
      storage.removeItem(KEY);
      return null;
    }
    return parsed;
  } catch {
    return null;
  }
}

export function currentSession(): Session | null {
  return read(sessionStorage) ?? read(localStorage);
}

export function signIn(session: Session, remember: boolean): void {
  const text = JSON.stringify(session);
  sessionStorage.setItem(KEY, text);
  if (remember) localStorage.setItem(KEY, text);
  else localStorage.removeItem(KEY);
  listeners.forEach((l) => l(session));
}

export function signOut(): void {
  sessionStorage.removeItem(KEY);
  localStorage.removeItem(KEY);
  listeners.forEach((l) => l(null));
}

export function onSessionChange(listener: Listener): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Take a token from `#token=…` once, then scrub it from the address bar. */
export function takeTokenFromFragment(): string | null {
  const match = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!match?.[1]) return null;
  history.replaceState(null, "", location.pathname + location.search);
  return decodeURIComponent(match[1]);
}
