// What an engineering manager opens first: is delivery healthy, how fast does it go, and
// which services need a look — across every project the viewer may see.

import { useQuery } from "@urql/preact";
import { Link } from "wouter-preact";
import { transportError } from "../api/errors";
import { graphql } from "../gql";
import type { DashboardQuery } from "../gql/graphql";
import { t } from "../i18n";
import { Badge } from "../ui/Badge";
import { BarChart } from "../ui/charts";
import { ErrorNotice } from "../ui/ErrorNotice";
import { ago, ms, percent, rate, releaseName } from "../ui/format";
import { GettingStarted } from "../ui/GettingStarted";
import { useInterval } from "../ui/hooks";

const DashboardDocument = graphql(`
  query Dashboard($days: Int!) {
    projects(first: 100) {
      totalCount
      nodes {
        id
        name
        slug
        environments(first: 20) {
          nodes {
            id
            name
            services(first: 100) {
              totalCount
              nodes {
                id
                name
                type
                runtime { status replicasReady replicasDesired release { id gitSha } }
                traffic(window: 300) { requestsPerSecond errorRate p95Ms }
                slo { frozen budgetSpent }
              }
            }
          }
        }
      }
    }
    deliveryStats(days: $days) {
      deploys
      succeeded
      failed
      rolledBack
      successRate
      days { day deploys succeeded failed rolledBack }
      recentRollbacks(first: 5) {
        id
        kind
        phase
        reason
        createdAt
        finishedAt
        service { id name environment { name } project { slug } }
        toRelease { id gitSha }
      }
    }
  }
`);

type ServiceRow = {
  project: string;
  env: string;
  svc: DashboardQuery["projects"]["nodes"][number]["environments"]["nodes"][number]["services"]["nodes"][number];
};

export function Dashboard() {
  const [{ data, error, fetching }, refetch] = useQuery({ query: DashboardDocument, variables: { days: 14 } });
  useInterval(() => refetch({ requestPolicy: "network-only" }), 15_000);
  if (!data && fetching) return <p class="loading">{t("loading")}</p>;
  if (!data) return <ErrorNotice error={transportError(error)} />;

  const rows: ServiceRow[] = data.projects.nodes.flatMap((p) =>
    p.environments.nodes.flatMap((e) => e.services.nodes.map((svc) => ({ project: p.slug, env: e.name, svc }))),
  );
  const stats = data.deliveryStats;
  if (rows.length === 0 && stats.deploys === 0) {
    return (
      <>
        <h1>{t("nav.dashboard")}</h1>
        <GettingStarted project={data.projects.nodes[0]?.slug} />
      </>
    );
  }
  const unhealthy = rows.filter((r) => r.svc.runtime && r.svc.runtime.status !== "RUNNING").length;
  const perDay = stats.days.length ? stats.deploys / stats.days.length : 0;
  return (
    <>
      <h1>{t("nav.dashboard")}</h1>
      <ErrorNotice error={transportError(error)} />
      <div class="cards">
        <div class="card" data-testid="success-rate">
          <span class="figure">{percent(stats.successRate)}</span>
          <span class="label">{t("dash.successRate", { days: stats.days.length })}</span>
        </div>
        <div class="card">
          <span class="figure">{perDay.toFixed(1)}</span>
          <span class="label">{t("dash.perDay")}</span>
        </div>
        <div class="card">
          <span class="figure">{stats.rolledBack}</span>
          <span class="label">{t("dash.rollbacks")}</span>
        </div>
        <div class="card">
          <span class="figure">{rows.length}</span>
          <span class="label">{t("dash.services", { unhealthy })}</span>
        </div>
      </div>

      <section>
        <h2>{t("dash.velocity")}</h2>
        <BarChart
          title={t("dash.velocity")}
          bars={stats.days.map((d) => ({
            label: d.day,
            segments: [
              { name: t("phase.HEALTHY"), value: d.succeeded, className: "ok" },
              { name: t("phase.FAILED"), value: d.failed, className: "bad" },
              { name: t("phase.ROLLED_BACK"), value: d.rolledBack, className: "warn" },
              { name: t("dash.other"), value: Math.max(0, d.deploys - d.succeeded - d.failed - d.rolledBack), className: "info" },
            ],
          }))}
        />
      </section>

      {stats.recentRollbacks.length > 0 && (
        <section>
          <h2>{t("dash.recentRollbacks")}</h2>
          <table>
            <tbody>
              {stats.recentRollbacks.map((d) => (
                <tr key={d.id}>
                  <td>
                    <Link href={`/projects/${d.service.project.slug}/${d.service.environment.name}/${d.service.name}`}>
                      {d.service.name}
                    </Link>{" "}
                    <span class="muted">{d.service.environment.name}</span>
                  </td>
                  <td><Badge value={d.phase} /></td>
                  <td class="reason">{d.reason ?? (d.kind === "ROLLBACK" ? t("dash.manualRollback", { sha: releaseName(d.toRelease) }) : "")}</td>
                  <td><Link href={`/deployments/${d.id}`}>{ago(d.finishedAt ?? d.createdAt)}</Link></td>
                </tr>
              ))}
            </tbody>
          </table>
        </section>
      )}

      <section>
        <h2>{t("dash.allServices")}</h2>
        <table class="services" data-testid="dashboard-services">
          <thead>
            <tr>
              <th>{t("col.service")}</th>
              <th>{t("col.environment")}</th>
              <th>{t("col.status")}</th>
              <th>{t("col.replicas")}</th>
              <th class="num">{t("col.rps")}</th>
              <th class="num">{t("col.errors")}</th>
              <th class="num">P95</th>
            </tr>
          </thead>
          <tbody>
            {rows.map(({ project, env, svc }) => (
              <tr key={svc.id}>
                <td>
                  <Link href={`/projects/${project}/${env}/${svc.name}`}>{svc.name}</Link>{" "}
                  <span class="muted">{project}</span>
                  {svc.slo?.frozen && <span class="badge bad">{t("slo.frozen")}</span>}
                </td>
                <td>{env}</td>
                <td><Badge value={svc.runtime?.status ?? null} /></td>
                <td>{svc.runtime ? `${svc.runtime.replicasReady}/${svc.runtime.replicasDesired}` : "—"}</td>
                <td class="num">{rate(svc.traffic.requestsPerSecond)}</td>
                <td class="num">{percent(svc.traffic.errorRate, 2)}</td>
                <td class="num">{ms(svc.traffic.p95Ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </>
  );
}
