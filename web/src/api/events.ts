// A project's activity stream, and a hook that refreshes a view when something happens in
// the project — at most once per REFRESH_MS, so a rollout's burst of events costs one query.

import { useSubscription } from "@urql/preact";
import { useEffect, useRef } from "preact/hooks";
import { graphql } from "../gql";

export const EventsSubscription = graphql(`
  subscription ProjectEventsLive($projectId: ID!, $after: Int) {
    events(projectId: $projectId, after: $after) { sequence type entityId actorId payload createdAt }
  }
`);

const REFRESH_MS = 1500;

/** A trailing throttle of `fn`: calls made while one is pending fold into it. */
export function useThrottled(fn: () => void, ms = REFRESH_MS): () => void {
  const saved = useRef(fn);
  saved.current = fn;
  const pending = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(
    () => () => {
      if (pending.current) clearTimeout(pending.current);
    },
    [],
  );
  return () => {
    if (pending.current) return;
    pending.current = setTimeout(() => {
      pending.current = null;
      saved.current();
    }, ms);
  };
}

/** Call `refresh` after the project's events (from now on), throttled. */
export function useLiveRefresh(projectId: string | null | undefined, refresh: () => void): void {
  const notify = useThrottled(refresh);
  useSubscription(
    { query: EventsSubscription, variables: { projectId: projectId ?? "", after: null }, pause: !projectId },
    (_prev, next) => {
      notify();
      return next;
    },
  );
}
