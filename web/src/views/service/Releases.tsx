import { Fragment } from "preact";
import { Link } from "wouter-preact";
import type { ServiceQuery } from "../../gql/graphql";
import { t } from "../../i18n";
import { Badge } from "../../ui/Badge";
import { ago, shortId, releaseName, creator } from "../../ui/format";

export type ReleaseRow = NonNullable<ServiceQuery["service"]>["releases"]["nodes"][number];
export type DeploymentRow = NonNullable<ServiceQuery["service"]>["deployments"]["nodes"][number];

const PROVENANCE_KEYS = ["builder", "builder_version", "command", "source", "seconds", "packages", "sbom_sha256", "signing_key"];

/** Where a release came from: the builder's record, signature and SBOM. */
export function Provenance({ release }: { release: ReleaseRow }) {
  const p = (release.provenance ?? {}) as Record<string, unknown>;
  return (
    <dl class="provenance" data-testid="provenance">
      <dt>{t("release.commit")}</dt>
      <dd><code>{release.gitSha ?? "—"}</code></dd>
      <dt>{t("release.digest")}</dt>
      <dd><code>{release.digest ?? "—"}</code></dd>
      <dt>{t("release.builtBy")}</dt>
      <dd>{creator(release)} · {ago(release.createdAt)}</dd>
      <dt>{t("release.signed")}</dt>
      <dd>{release.signature ? t("yes") : t("no")}</dd>
      {PROVENANCE_KEYS.filter((k) => p[k] != null && p[k] !== "").map((k) => (
        <Fragment key={k}>
          <dt>{k.replace(/_/g, " ")}</dt>
          <dd><code>{String(p[k])}</code></dd>
        </Fragment>
      ))}
    </dl>
  );
}

export function ReleasesTable({ releases, serving }: { releases: ReleaseRow[]; serving: Set<string> }) {
  if (releases.length === 0) return <p class="muted">{t("release.none")}</p>;
  return (
    <table data-testid="releases">
      <thead>
        <tr>
          <th>{t("col.release")}</th>
          <th>{t("col.commit")}</th>
          <th>{t("col.status")}</th>
          <th>{t("col.created")}</th>
        </tr>
      </thead>
      <tbody>
        {releases.map((r) => (
          <tr key={r.id}>
            <td>
              <code title={r.id}>{shortId(r.id)}</code>
              {serving.has(r.id) && <span class="badge ok">{t("release.serving")}</span>}
            </td>
            <td><code>{r.gitSha?.slice(0, 7) ?? "—"}</code></td>
            <td>
              <Badge value={r.status} />
              {r.statusReason && <span class="muted small"> {r.statusReason}</span>}
            </td>
            <td class="muted">{ago(r.createdAt)} · {creator(r)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export function DeploymentsTable({ deployments }: { deployments: DeploymentRow[] }) {
  if (deployments.length === 0) return <p class="muted">{t("deploy.none")}</p>;
  return (
    <table data-testid="deployments">
      <thead>
        <tr>
          <th>{t("col.deployment")}</th>
          <th>{t("col.status")}</th>
          <th>{t("col.release")}</th>
          <th>{t("col.created")}</th>
        </tr>
      </thead>
      <tbody>
        {deployments.map((d) => (
          <tr key={d.id}>
            <td>
              <Link href={`/deployments/${d.id}`}><code>{shortId(d.id)}</code></Link>{" "}
              <span class="muted">{d.kind === "ROLLBACK" ? t("deploy.kind.rollback") : d.strategy.toLowerCase().replace("_", "-")}</span>
            </td>
            <td>
              <Badge value={d.phase} />
              {d.reason && <span class="muted small"> {d.reason}</span>}
            </td>
            <td>
              <code>{d.fromRelease ? releaseName(d.fromRelease) : "∅"}</code> →{" "}
              <code>{releaseName(d.toRelease)}</code>
            </td>
            <td class="muted">{ago(d.createdAt)} · {creator(d)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
