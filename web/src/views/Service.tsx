// A service: what runs now, its traffic, releases and deployments, routes, and the actions
// (deploy, rollback, scale) — shown only to those the server says may take them.

import { useQuery } from "@urql/preact";
import { Link } from "wouter-preact";
import { transportError } from "../api/errors";
import { useLiveRefresh } from "../api/events";
import { t } from "../i18n";
import { ErrorNotice } from "../ui/ErrorNotice";
import { ms, percent, rate } from "../ui/format";
import { useInterval } from "../ui/hooks";
import { DeployButton, RollbackButton, ScaleButton } from "./service/Actions";
import { ServiceDocument } from "./service/documents";
import { DeploymentsTable, ReleasesTable } from "./service/Releases";
import { RoutesPanel } from "./service/Routes";
import { RuntimePanel } from "./service/Runtime";

type Props = { project: string; env: string; name: string };

type SpecDocument = { spec?: { runtime?: { replicas?: { min?: number; max?: number } } } };

/** The replica bounds of the stored (normalised) spec: spec.runtime.replicas. */
function bounds(document: unknown): { min: number; max: number } {
  const replicas = (document as SpecDocument | null)?.spec?.runtime?.replicas;
  return { min: replicas?.min ?? 1, max: replicas?.max ?? replicas?.min ?? 1 };
}

export function ServiceView({ project, env, name }: Props) {
  const [{ data, error, fetching }, refetch] = useQuery({ query: ServiceDocument, variables: { project, env, name } });
  const reload = () => refetch({ requestPolicy: "network-only" });
  // Live: the project's events (deployments, scaling, routes) refresh the page; the slow
  // poll only keeps traffic figures current between them.
  useLiveRefresh(data?.service?.project.id, reload);
  useInterval(reload, 15_000);
  if (!data && fetching) return <p class="loading">{t("loading")}</p>;
  if (!data) return <ErrorNotice error={transportError(error)} />;
  const svc = data.service;
  if (!svc) return <ErrorNotice error={{ code: "NOT_FOUND", message: t("service.missing", { name, env, project }) }} />;

  const runtimes = [...svc.runtimes.nodes].sort((a, b) => b.weight - a.weight);
  const servingId = runtimes[0]?.release.id ?? null;
  const serving = new Set(runtimes.filter((r) => r.weight > 0).map((r) => r.release.id));
  const can = svc.project.viewerCan;
  const { min, max } = bounds(svc.spec?.spec);
  const base = `/projects/${project}/${env}/${name}`;
  return (
    <>
      <nav class="crumbs">
        <Link href="/projects">{t("nav.projects")}</Link> / <Link href={`/projects/${project}`}>{project}</Link> / {env}
      </nav>
      <div class="title-row">
        <h1>
          {svc.name} <span class="muted small">{svc.type.toLowerCase()} · {env}</span>
        </h1>
        <div class="actions" data-testid="service-actions">
          {can.observe && <Link class="button" href={`${base}/logs`}>{t("action.logs")}</Link>}
          {can.deploy && (
            <>
              <DeployButton serviceId={svc.id} releases={svc.releases.nodes} servingId={servingId} />
              <RollbackButton serviceId={svc.id} releases={svc.releases.nodes} servingId={servingId} />
              <ScaleButton serviceId={svc.id} min={min} max={max} />
            </>
          )}
        </div>
      </div>
      <ErrorNotice error={transportError(error)} />
      {svc.slo?.frozen && (
        <div class="notice warn" role="status">
          {t("slo.frozenLead", { spent: percent(svc.slo.budgetSpent, 0) })} {svc.slo.reason}
        </div>
      )}
      <div class="cards">
        <div class="card"><span class="figure">{rate(svc.traffic.requestsPerSecond)}</span><span class="label">{t("traffic.rps")}</span></div>
        <div class="card"><span class="figure">{percent(svc.traffic.errorRate, 2)}</span><span class="label">{t("traffic.errors")}</span></div>
        <div class="card"><span class="figure">{ms(svc.traffic.p95Ms)}</span><span class="label">P95</span></div>
        <div class="card"><span class="figure">{min === max ? min : `${min}–${max}`}</span><span class="label">{t("scale.bounds")}</span></div>
      </div>
      <section>
        <h2>{t("runtime.title")}</h2>
        <RuntimePanel runtimes={runtimes} />
      </section>
      <section>
        <h2>{t("deploy.title")}</h2>
        <DeploymentsTable deployments={svc.deployments.nodes} />
      </section>
      <section>
        <h2>{t("release.title")}</h2>
        <ReleasesTable releases={svc.releases.nodes} serving={serving} />
      </section>
      <section>
        <h2>{t("routes.title")}</h2>
        <RoutesPanel serviceId={svc.id} routes={svc.routes.nodes} canEdit={can.routes} onChange={reload} />
      </section>
    </>
  );
}
