// Live logs: the newest lines, then every line as it is written — follow, grep, pause, and
// jump to a time. Lines arrive in batches on one subscription and are appended once per
// animation frame, and only the rows in view are rendered, so 1,000 lines a second neither
// drop nor freeze the page.

import { useClient, useQuery } from "@urql/preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { Link } from "wouter-preact";
import { transportError, type ResultError } from "../api/errors";
import { graphql } from "../gql";
import type { LogLineFieldsFragment } from "../gql/graphql";
import { t } from "../i18n";
import { ErrorNotice } from "../ui/ErrorNotice";
import { timeOfDay } from "../ui/format";
import { VirtualList } from "../ui/VirtualList";

graphql(`
  fragment LogLineFields on LogLine { sequence ts level message source stream releaseId }
`);

const LogServiceDocument = graphql(`
  query LogService($project: String!, $env: String!, $name: String!) {
    service(project: $project, environment: $env, name: $name) { id name }
  }
`);

const LogsDocument = graphql(`
  query Logs($serviceId: ID!, $limit: Int!, $grep: String, $since: DateTime, $after: Int) {
    logs(serviceId: $serviceId, limit: $limit, grep: $grep, since: $since, after: $after) {
      lines { ...LogLineFields }
      hasMore
      cursor
    }
  }
`);

// Batches: the lines stored together come as one message, so a service writing thousands
// of lines a second costs the server and this page a message per write, not per line.
const LogsSubscription = graphql(`
  subscription LogsLive($serviceId: ID!, $grep: String, $after: Int) {
    logBatches(serviceId: $serviceId, grep: $grep, after: $after) { cursor lines { ...LogLineFields } }
  }
`);

type Line = LogLineFieldsFragment;
const ROW = 20;
const INITIAL = 500;
const KEEP = 100_000; // beyond this the oldest lines leave memory (the API still has them)
const PAGE = 1000;

type Props = { project: string; env: string; name: string };

export function LogsView({ project, env, name }: Props) {
  const [{ data, error }] = useQuery({ query: LogServiceDocument, variables: { project, env, name } });
  if (!data) return error ? <ErrorNotice error={transportError(error)} /> : <p class="loading">{t("loading")}</p>;
  if (!data.service) return <ErrorNotice error={{ code: "NOT_FOUND", message: t("service.missing", { name, env, project }) }} />;
  return <LogStream serviceId={data.service.id} title={`${project} / ${env} / ${name}`} back={`/projects/${project}/${env}/${name}`} />;
}

export function LogStream({ serviceId, title, back }: { serviceId: string; title: string; back: string }) {
  const client = useClient();
  const buffer = useRef<Line[]>([]);
  const lastSeq = useRef(0);
  const frame = useRef(0);
  const [version, setVersion] = useState(0);
  const [grep, setGrep] = useState("");
  const [activeGrep, setActiveGrep] = useState("");
  const [since, setSince] = useState<string | null>(null); // jump-to-time: history mode
  const [paused, setPaused] = useState(false);
  const [pausedAt, setPausedAt] = useState(0);
  const [follow, setFollow] = useState(true);
  const [live, setLive] = useState(false);
  const [hasMore, setHasMore] = useState(false);
  const [trimmed, setTrimmed] = useState(0);
  const [problem, setProblem] = useState<ResultError | null>(null);

  const flush = () => {
    frame.current = 0;
    setVersion((v) => v + 1);
  };
  const schedule = () => {
    if (!frame.current) frame.current = requestAnimationFrame(flush);
  };
  const append = (lines: readonly Line[]) => {
    for (const line of lines) {
      if (line.sequence <= lastSeq.current) continue; // replayed after a reconnect
      buffer.current.push(line);
      lastSeq.current = line.sequence;
    }
    if (buffer.current.length > KEEP) {
      const drop = buffer.current.length - KEEP + PAGE;
      buffer.current.splice(0, drop);
      setTrimmed((n) => n + drop);
    }
    schedule();
  };

  // Debounce typing: one query per pause in typing, not one per key.
  useEffect(() => {
    const id = setTimeout(() => setActiveGrep(grep.trim()), 300);
    return () => clearTimeout(id);
  }, [grep]);

  useEffect(() => {
    buffer.current = [];
    lastSeq.current = 0;
    setTrimmed(0);
    setProblem(null);
    setLive(false);
    setVersion((v) => v + 1);
    let cancelled = false;
    let unsubscribe: (() => void) | null = null;
    const grepVar = activeGrep || null;
    (async () => {
      const variables = since
        ? { serviceId, limit: PAGE, grep: grepVar, since, after: null }
        : { serviceId, limit: INITIAL, grep: grepVar, since: null, after: null };
      const result = await client.query(LogsDocument, variables, { requestPolicy: "network-only" }).toPromise();
      if (cancelled) return;
      if (result.error || !result.data) {
        setProblem(transportError(result.error) ?? { message: t("logs.failed") });
        return;
      }
      append(result.data.logs.lines);
      setHasMore(since ? result.data.logs.hasMore : false);
      if (since) return; // history: no live tail until "back to live"
      const after = result.data.logs.cursor ?? lastSeq.current;
      const sub = client.subscription(LogsSubscription, { serviceId, grep: grepVar, after }).subscribe((r) => {
        if (r.error) setProblem(transportError(r.error));
        else if (r.data) {
          setLive(true);
          append(r.data.logBatches.lines);
        }
      });
      unsubscribe = sub.unsubscribe;
      setLive(true);
    })();
    return () => {
      cancelled = true;
      unsubscribe?.();
      if (frame.current) cancelAnimationFrame(frame.current);
      frame.current = 0;
    };
  }, [serviceId, activeGrep, since, client]);

  const loadMore = async () => {
    const result = await client
      .query(LogsDocument, { serviceId, limit: PAGE, grep: activeGrep || null, since: null, after: lastSeq.current }, { requestPolicy: "network-only" })
      .toPromise();
    if (result.error || !result.data) {
      setProblem(transportError(result.error));
      return;
    }
    append(result.data.logs.lines);
    setHasMore(result.data.logs.hasMore);
  };

  const items = buffer.current;
  const shown = paused ? Math.min(pausedAt, items.length) : items.length;
  const view = shown === items.length ? items : items.slice(0, shown);
  const waiting = items.length - shown;

  return (
    <section class="logs-view">
      <nav class="crumbs"><Link href={back}>{title}</Link> / {t("action.logs")}</nav>
      <div class="toolbar" role="toolbar" aria-label={t("logs.tools")}>
        <input
          type="search"
          name="grep"
          placeholder={t("logs.grep")}
          aria-label={t("logs.grep")}
          value={grep}
          onInput={(e) => setGrep(e.currentTarget.value)}
        />
        <label class="inline-label">
          {t("logs.jump")}
          <input
            type="datetime-local"
            name="since"
            step={1}
            onChange={(e) => {
              const value = e.currentTarget.value;
              setSince(value ? new Date(value).toISOString() : null);
              setFollow(false);
            }}
          />
        </label>
        {since ? (
          <button onClick={() => { setSince(null); setFollow(true); }}>{t("logs.backToLive")}</button>
        ) : (
          <>
            <button
              aria-pressed={paused}
              onClick={() => {
                if (!paused) setPausedAt(items.length);
                setPaused(!paused);
              }}
            >
              {paused ? t("logs.resume") : t("logs.pause")}
            </button>
            <button aria-pressed={follow} onClick={() => setFollow(!follow)}>{t("logs.follow")}</button>
          </>
        )}
        <span class="status muted" data-testid="log-status">
          {since ? t("logs.history") : live ? t("logs.live") : t("logs.connecting")}
          {" · "}
          {t("logs.count", { n: shown })}
          {waiting > 0 && ` · ${t("logs.waiting", { n: waiting })}`}
          {trimmed > 0 && ` · ${t("logs.trimmed", { n: trimmed })}`}
        </span>
      </div>
      <ErrorNotice error={problem} onDismiss={() => setProblem(null)} />
      <VirtualList
        items={view}
        rowHeight={ROW}
        version={version + (paused ? 0 : 1)}
        follow={follow && !paused}
        onUserScroll={(atBottom) => setFollow(atBottom)}
        label={t("action.logs")}
        className="log-lines"
        render={(line) => (
          <div class={`log-line level-${line.level}`} title={line.message} data-seq={line.sequence}>
            <time dateTime={line.ts}>{timeOfDay(line.ts)}</time>
            <span class="stream">{line.source}/{line.stream}</span>
            <span class="msg">{line.message}</span>
          </div>
        )}
      />
      {items.length === 0 && <p class="muted empty-logs">{activeGrep ? t("logs.noMatch", { grep: activeGrep }) : t("logs.none")}</p>}
      {hasMore && <button onClick={loadMore}>{t("logs.more")}</button>}
    </section>
  );
}
