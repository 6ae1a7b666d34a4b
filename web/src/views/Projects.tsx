import { useQuery } from "@urql/preact";
import { Link } from "wouter-preact";
import { transportError } from "../api/errors";
import { graphql } from "../gql";
import { t } from "../i18n";
import { ErrorNotice } from "../ui/ErrorNotice";
import { GettingStarted } from "../ui/GettingStarted";

const ProjectsDocument = graphql(`
  query Projects {
    projects(first: 100) {
      totalCount
      nodes {
        id
        name
        slug
        viewerRole
        environments(first: 20) { nodes { id name services { totalCount } } }
      }
    }
  }
`);

export function ProjectsView() {
  const [{ data, error, fetching }] = useQuery({ query: ProjectsDocument });
  if (!data && fetching) return <p class="loading">{t("loading")}</p>;
  if (!data) return <ErrorNotice error={transportError(error)} />;
  const projects = data.projects.nodes;
  return (
    <>
      <h1>{t("nav.projects")}</h1>
      {projects.length === 0 ? (
        <GettingStarted />
      ) : (
        <ul class="tiles" data-testid="projects">
          {projects.map((p) => (
            <li key={p.id}>
              <Link href={`/projects/${p.slug}`} class="tile">
                <strong>{p.name}</strong>
                <span class="muted">{p.slug}{p.viewerRole && ` · ${p.viewerRole.toLowerCase()}`}</span>
                <span class="envs">
                  {p.environments.nodes.map((e) => (
                    <span key={e.id} class="env-pill">
                      {e.name} <b>{e.services.totalCount}</b>
                    </span>
                  ))}
                </span>
              </Link>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
