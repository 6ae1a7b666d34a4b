// Single sign-on with the authorization-code flow and PKCE (RFC 7636), as a public client:
// no secret lives in the browser. The ID token the issuer returns is sent to the API as the
// bearer token; the API checks its signature against the issuer's keys, and its audience.

import { signIn } from "./session";

export type OidcSettings = { issuer: string; clientId: string; scopes: string };
type Pending = {
  state: string;
  nonce: string;
  verifier: string;
  tokenEndpoint: string;
  clientId: string;
  redirectUri: string;
  returnTo: string;
};

const PENDING_KEY = "enclii.oidc.pending";
const CALLBACK_PATH = "/auth/callback";
const TIMEOUT_MS = 10_000;

function base64url(bytes: ArrayBuffer | Uint8Array): string {
  const view = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  let text = "";
  view.forEach((b) => (text += String.fromCharCode(b)));
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(bytes = 32): string {
  return base64url(crypto.getRandomValues(new Uint8Array(bytes)));
}

async function fetchJson(url: string, init?: RequestInit): Promise<Record<string, unknown>> {
  const response = await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
  const body = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) {
    const detail = [body.error, body.error_description].filter(Boolean).join(": ");
    throw new Error(`${url} answered ${response.status}${detail ? ` (${detail})` : ""}`);
  }
  return body;
}

export async function startOidcSignIn(settings: OidcSettings): Promise<void> {
  const discovery = await fetchJson(`${settings.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`);
  const authorize = discovery.authorization_endpoint;
  const token = discovery.token_endpoint;
  if (typeof authorize !== "string" || typeof token !== "string") {
    throw new Error(`${settings.issuer} publishes no authorization_endpoint or token_endpoint`);
  }
  const verifier = randomString(48);
  const challenge = base64url(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier)));
  const pending: Pending = {
    state: randomString(16),
    nonce: randomString(16),
    verifier,
    tokenEndpoint: token,
    clientId: settings.clientId,
    redirectUri: `${location.origin}${CALLBACK_PATH}`,
    returnTo: location.pathname === CALLBACK_PATH ? "/" : location.pathname + location.search,
  };
  sessionStorage.setItem(PENDING_KEY, JSON.stringify(pending));
  const url = new URL(authorize);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: settings.clientId,
    redirect_uri: pending.redirectUri,
    scope: settings.scopes,
    state: pending.state,
    nonce: pending.nonce,
    code_challenge: challenge,
    code_challenge_method: "S256",
  }).toString();
  location.assign(url.toString());
}

export function isOidcCallback(): boolean {
  return location.pathname === CALLBACK_PATH;
}

function claims(idToken: string): Record<string, unknown> {
  const part = idToken.split(".")[1];
  if (!part) throw new Error("the issuer returned an ID token that is not a JWT");
  const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
  return JSON.parse(json) as Record<string, unknown>;
}

export async function completeOidcSignIn(): Promise<void> {
  const params = new URLSearchParams(location.search);
  const raw = sessionStorage.getItem(PENDING_KEY);
  sessionStorage.removeItem(PENDING_KEY);
  history.replaceState(null, "", "/");
  if (params.get("error")) {
    throw new Error(`the issuer refused the sign-in: ${params.get("error")} ${params.get("error_description") ?? ""}`.trim());
  }
  if (!raw) throw new Error("this sign-in was not started from this tab; start again");
  const pending = JSON.parse(raw) as Pending;
  if (params.get("state") !== pending.state) throw new Error("the sign-in's state does not match; start again");
  const code = params.get("code");
  if (!code) throw new Error("the issuer sent no authorization code");
  const body = await fetchJson(pending.tokenEndpoint, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: pending.redirectUri,
      client_id: pending.clientId,
      code_verifier: pending.verifier,
    }),
  });
  const idToken = body.id_token;
  if (typeof idToken !== "string") throw new Error("the issuer's answer holds no id_token");
  const c = claims(idToken);
  if (c.nonce !== pending.nonce) throw new Error("the ID token's nonce does not match this sign-in");
  const exp = typeof c.exp === "number" ? c.exp * 1000 : undefined;
  signIn({ token: idToken, via: "oidc", expiresAt: exp }, false);
  history.replaceState(null, "", pending.returnTo);
}
