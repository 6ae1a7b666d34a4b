import { t } from "../i18n";

/** What a new install shows instead of an empty table: the three commands to a first deploy. */
export function GettingStarted({ project }: { project?: string }) {
  const login = `enclii auth login --api-url ${location.origin}/graphql --token-stdin < ~/.enclii/bootstrap-token`;
  return (
    <section class="empty getting-started" data-testid="getting-started">
      <h2>{project ? t("empty.service.title") : t("empty.project.title")}</h2>
      <p>{t("empty.lead")}</p>
      <ol>
        <li>
          {t("empty.step.login")}
          <pre><code>{login}</code></pre>
        </li>
        <li>
          {t("empty.step.init")}
          <pre><code>{`enclii init --template api --project ${project ?? "shop"}`}</code></pre>
        </li>
        <li>
          {t("empty.step.deploy")}
          <pre><code>enclii deploy --wait</code></pre>
        </li>
      </ol>
      <p class="muted">{t("empty.after")}</p>
    </section>
  );
}
