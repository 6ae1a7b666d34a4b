// A project: its environments, the services in each, and its activity as it happens.

import { useQuery } from "@urql/preact";
import { Link } from "wouter-preact";
import { transportError } from "../api/errors";
import { graphql } from "../gql";
import { t } from "../i18n";
import { ActivityFeed } from "../ui/ActivityFeed";
import { Badge } from "../ui/Badge";
import { ErrorNotice } from "../ui/ErrorNotice";
import { ago, releaseName } from "../ui/format";
import { GettingStarted } from "../ui/GettingStarted";
import { useInterval, useNow } from "../ui/hooks";

const ProjectDocument = graphql(`
  query Project($slug: String!) {
    project(slug: $slug) {
      id
      name
      slug
      viewerRole
      viewerCan { deploy routes observe readAudit }
      environments(first: 20) {
        nodes {
          id
          name
          region
          isPreview
          services(first: 100) {
            nodes {
              id
              name
              type
              latestRelease { id status gitSha createdAt }
              runtime { status replicasReady replicasDesired release { id gitSha } }
            }
          }
        }
      }
    }
  }
`);

export function ProjectView({ slug }: { slug: string }) {
  const [{ data, error, fetching }, refetch] = useQuery({ query: ProjectDocument, variables: { slug } });
  useInterval(() => refetch({ requestPolicy: "network-only" }), 10_000);
  const now = useNow();
  if (!data && fetching) return <p class="loading">{t("loading")}</p>;
  if (!data) return <ErrorNotice error={transportError(error)} />;
  const project = data.project;
  if (!project) return <ErrorNotice error={{ message: t("project.missing", { slug }), code: "NOT_FOUND" }} />;
  const total = project.environments.nodes.reduce((n, e) => n + e.services.nodes.length, 0);
  return (
    <>
      <nav class="crumbs"><Link href="/projects">{t("nav.projects")}</Link> / {project.slug}</nav>
      <h1>{project.name}</h1>
      {total === 0 && <GettingStarted project={project.slug} />}
      <div class="split">
        <div>
          {project.environments.nodes.map((env) => (
            <section key={env.id} class="env">
              <h2>
                {env.name} <span class="muted small">{env.region}{env.isPreview ? ` · ${t("env.preview")}` : ""}</span>
              </h2>
              {env.services.nodes.length === 0 ? (
                <p class="muted">{t("env.empty")}</p>
              ) : (
                <table class="services">
                  <thead>
                    <tr>
                      <th>{t("col.service")}</th>
                      <th>{t("col.type")}</th>
                      <th>{t("col.status")}</th>
                      <th>{t("col.replicas")}</th>
                      <th>{t("col.release")}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {env.services.nodes.map((s) => (
                      <tr key={s.id}>
                        <td><Link href={`/projects/${project.slug}/${env.name}/${s.name}`}>{s.name}</Link></td>
                        <td class="muted">{s.type.toLowerCase()}</td>
                        <td><Badge value={s.runtime?.status ?? null} /></td>
                        <td>{s.runtime ? `${s.runtime.replicasReady}/${s.runtime.replicasDesired}` : "—"}</td>
                        <td>
                          {s.latestRelease ? (
                            <>
                              <code>{releaseName(s.latestRelease)}</code>{" "}
                              <Badge value={s.latestRelease.status} />{" "}
                              <span class="muted">{ago(s.latestRelease.createdAt, now)}</span>
                            </>
                          ) : (
                            "—"
                          )}
                        </td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </section>
          ))}
        </div>
        {project.viewerCan.observe && (
          <aside>
            <h2>{t("activity.title")}</h2>
            <ActivityFeed projectId={project.id} onEvent={() => refetch({ requestPolicy: "network-only" })} />
          </aside>
        )}
      </div>
    </>
  );
}
