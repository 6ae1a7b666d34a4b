import { useEffect, useState } from "preact/hooks";
import { t } from "../i18n";
import { LangSwitch } from "../ui/LangSwitch";
import { startOidcSignIn, type OidcSettings } from "./oidc";
import { signIn } from "./session";

type UiConfig = { oidc: OidcSettings | null; version?: string };

/** Check a token against the API before keeping it, so a typo fails here, with the reason. */
async function verify(token: string): Promise<string | null> {
  try {
    const response = await fetch("/graphql", {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query: "{ viewer { user { id } } }" }),
      signal: AbortSignal.timeout(10_000),
    });
    const body = (await response.json().catch(() => null)) as { errors?: { message: string }[] } | null;
    if (response.ok && !body?.errors?.length) return null;
    return body?.errors?.map((e) => e.message).join("; ") ?? `HTTP ${response.status}`;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  }
}

export function SignIn({ error }: { error?: string | null }) {
  const [token, setToken] = useState("");
  const [remember, setRemember] = useState(false);
  const [problem, setProblem] = useState<string | null>(error ?? null);
  const [busy, setBusy] = useState(false);
  const [config, setConfig] = useState<UiConfig | null>(null);

  useEffect(() => {
    fetch("/ui/config.json", { signal: AbortSignal.timeout(10_000) })
      .then((r) => (r.ok ? (r.json() as Promise<UiConfig>) : null))
      .then(setConfig)
      .catch(() => setConfig(null));
  }, []);
  useEffect(() => setProblem(error ?? null), [error]);

  const submit = async (e: Event) => {
    e.preventDefault();
    const value = token.trim();
    if (!value) {
      setProblem(t("signin.empty"));
      return;
    }
    setBusy(true);
    const failure = await verify(value);
    setBusy(false);
    if (failure) setProblem(failure);
    else signIn({ token: value, via: "token" }, remember);
  };

  return (
    <main class="signin">
      <div class="signin-card">
        <h1>Enclii</h1>
        <p class="muted">{t("signin.lead")}</p>
        {problem && (
          <div class="notice error" role="alert" data-testid="signin-error">
            {problem}
          </div>
        )}
        <form onSubmit={submit}>
          <label for="token">{t("signin.token")}</label>
          <input
            id="token"
            name="token"
            type="password"
            autocomplete="off"
            spellcheck={false}
            value={token}
            onInput={(e) => setToken(e.currentTarget.value)}
            placeholder="enclii_pat_…"
          />
          <p class="hint">{t("signin.bootstrap")}</p>
          <label class="check">
            <input type="checkbox" checked={remember} onChange={(e) => setRemember(e.currentTarget.checked)} />
            {t("signin.remember")}
          </label>
          <button class="primary" type="submit" disabled={busy}>
            {busy ? t("working") : t("signin.submit")}
          </button>
        </form>
        {config?.oidc && (
          <div class="sso">
            <button
              type="button"
              onClick={() => startOidcSignIn(config.oidc!).catch((e: unknown) => setProblem(String(e instanceof Error ? e.message : e)))}
            >
              {t("signin.sso", { issuer: new URL(config.oidc.issuer).host })}
            </button>
          </div>
        )}
        <LangSwitch />
      </div>
    </main>
  );
}
