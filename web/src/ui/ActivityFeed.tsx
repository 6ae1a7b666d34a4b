// A project's events: the latest page, then each new one as it commits (resumed from the
// last sequence after a reconnect, so none is missed or shown twice).

import { useQuery, useSubscription } from "@urql/preact";
import { useEffect, useState } from "preact/hooks";
import { EventsSubscription, useThrottled } from "../api/events";
import { graphql } from "../gql";
import type { ProjectEventsQuery } from "../gql/graphql";
import { t } from "../i18n";
import { ago } from "./format";
import { useNow } from "./hooks";

const ProjectEventsDocument = graphql(`
  query ProjectEvents($projectId: ID!) {
    projectEvents(projectId: $projectId, first: 30) {
      events { sequence type entityId actorId payload createdAt }
    }
  }
`);

type Ev = ProjectEventsQuery["projectEvents"]["events"][number];
const KEEP = 100;

function summary(ev: Ev): string {
  const p = (ev.payload ?? {}) as Record<string, unknown>;
  const bits = [p.name, p.phase, p.reason, p.status].filter((x) => typeof x === "string" && x);
  return bits.join(" · ");
}

export function ActivityFeed({ projectId, onEvent }: { projectId: string; onEvent?: () => void }) {
  const notify = useThrottled(() => onEvent?.());
  const [{ data }] = useQuery({ query: ProjectEventsDocument, variables: { projectId }, requestPolicy: "network-only" });
  const [events, setEvents] = useState<Ev[]>([]);
  const now = useNow();
  useEffect(() => {
    if (data) setEvents([...data.projectEvents.events].sort((a, b) => b.sequence - a.sequence));
  }, [data]);
  const after = data ? (data.projectEvents.events.reduce((m, e) => Math.max(m, e.sequence), 0) || null) : undefined;
  useSubscription(
    { query: EventsSubscription, variables: { projectId, after: after ?? null }, pause: after === undefined },
    (_prev, next) => {
      const ev = next.events;
      setEvents((list) => (list.some((e) => e.sequence === ev.sequence) ? list : [ev, ...list].slice(0, KEEP)));
      notify();
      return next;
    },
  );
  if (!data) return <p class="muted">{t("loading")}</p>;
  if (events.length === 0) return <p class="muted">{t("activity.none")}</p>;
  return (
    <ol class="feed" data-testid="activity">
      {events.map((ev) => (
        <li key={ev.sequence}>
          <span class="type">{ev.type}</span> <span class="muted">{summary(ev)}</span>
          <span class="when" title={ev.createdAt}>{ago(ev.createdAt, now)}</span>
        </li>
      ))}
    </ol>
  );
}
