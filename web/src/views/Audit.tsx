// The audit trail: who did what, allowed or denied, newest first, filtered; each entry opens
// to the change it made as a diff. The chain can be verified from here.

import { useClient, useQuery } from "@urql/preact";
import { useState } from "preact/hooks";
import { transportError, type ResultError } from "../api/errors";
import { useViewer } from "../api/viewer";
import { graphql } from "../gql";
import type { AuditEventFilter, AuditOutcome, AuditTrailQuery } from "../gql/graphql";
import { t } from "../i18n";
import { Badge } from "../ui/Badge";
import { diff } from "../ui/diff";
import { ErrorNotice } from "../ui/ErrorNotice";
import { clock } from "../ui/format";
import { currentSession } from "../auth/session";

/** The whole trail as NDJSON, for a SIEM. A plain link cannot carry the bearer token, so the
 * file is fetched with it and handed to the browser as a download. */
async function exportTrail(): Promise<void> {
  const token = currentSession()?.token ?? "";
  const response = await fetch("/audit/export.ndjson", { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) {
    const body = (await response.json().catch(() => null)) as { errors?: { message: string }[] } | null;
    throw new Error(body?.errors?.[0]?.message ?? `HTTP ${response.status}`);
  }
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = `enclii-audit-${new Date().toISOString().slice(0, 10)}.ndjson`;
  link.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

const AuditDocument = graphql(`
  query AuditTrail($filter: AuditEventFilter, $after: String) {
    auditEvents(filter: $filter, first: 50, after: $after) {
      hasNextPage
      endCursor
      nodes { id actorId actorDisplay action outcome entityType entityId projectId payload requestId sourceAddress createdAt }
    }
    projects(first: 100) { nodes { id slug } }
  }
`);

const VerifyDocument = graphql(`
  query VerifyAudit {
    verifyAudit { ok checked brokenAtSequence problem }
  }
`);

type AuditRow = AuditTrailQuery["auditEvents"]["nodes"][number];

function Entry({ row }: { row: AuditRow }) {
  const [open, setOpen] = useState(false);
  const payload = (row.payload ?? {}) as Record<string, unknown>;
  const changes = diff(payload.before, payload.after);
  const extra = Object.fromEntries(Object.entries(payload).filter(([k]) => k !== "before" && k !== "after"));
  return (
    <>
      <tr class={open ? "open" : ""} onClick={() => setOpen(!open)} data-testid="audit-row">
        <td class="muted" title={row.createdAt}>{clock(row.createdAt)}</td>
        <td>{row.actorDisplay}</td>
        <td><code>{row.action}</code></td>
        <td><Badge value={row.outcome} /></td>
        <td class="muted"><code>{row.entityId ?? "—"}</code></td>
        <td><button class="link" aria-expanded={open}>{open ? "−" : "+"}</button></td>
      </tr>
      {open && (
        <tr class="detail">
          <td colSpan={6}>
            {changes.length > 0 ? (
              <table class="diff" data-testid="audit-diff">
                <tbody>
                  {changes.map((c) => (
                    <tr key={c.path} class={c.kind}>
                      <td><code>{c.path}</code></td>
                      <td class="before">{c.before ?? ""}</td>
                      <td>→</td>
                      <td class="after">{c.after ?? ""}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            ) : (
              <p class="muted">{t("audit.noChange")}</p>
            )}
            {Object.keys(extra).length > 0 && <pre class="json">{JSON.stringify(extra, null, 2)}</pre>}
            <p class="muted small">
              {t("audit.request")} <code>{row.requestId ?? "—"}</code> · {row.sourceAddress ?? "—"} · {row.actorId}
            </p>
          </td>
        </tr>
      )}
    </>
  );
}

export function AuditView() {
  const viewer = useViewer();
  const client = useClient();
  const [filter, setFilter] = useState<AuditEventFilter>({});
  const [draft, setDraft] = useState({ projectId: "", actor: "", action: "", outcome: "" });
  const [more, setMore] = useState<AuditRow[]>([]);
  const [cursor, setCursor] = useState<string | null>(null);
  const [verify, setVerify] = useState<string | null>(null);
  const [problem, setProblem] = useState<ResultError | null>(null);
  const [{ data, error, fetching }] = useQuery({ query: AuditDocument, variables: { filter, after: null }, requestPolicy: "network-only" });

  if (!data && error) {
    // The server says why (the role it needs, or the token's missing audit:read scope).
    return <ErrorNotice error={transportError(error)} />;
  }
  if (!data && viewer && !viewer.can.readAudit) {
    return <ErrorNotice error={{ code: "FORBIDDEN", message: t("audit.forbidden") }} />;
  }
  const rows = [...(data?.auditEvents.nodes ?? []), ...more];
  const nextCursor = more.length ? cursor : data?.auditEvents.endCursor ?? null;
  const hasNext = more.length ? cursor !== null : Boolean(data?.auditEvents.hasNextPage);

  const apply = (e: Event) => {
    e.preventDefault();
    setMore([]);
    setCursor(null);
    setFilter({
      projectId: draft.projectId || null,
      actorId: draft.actor.trim() || null,
      action: draft.action.trim() || null,
      outcome: (draft.outcome || null) as AuditOutcome | null,
    });
  };
  const loadMore = async () => {
    const r = await client.query(AuditDocument, { filter, after: nextCursor }, { requestPolicy: "network-only" }).toPromise();
    if (r.error || !r.data) return setProblem(transportError(r.error));
    setMore((list) => [...list, ...r.data!.auditEvents.nodes]);
    setCursor(r.data.auditEvents.hasNextPage ? r.data.auditEvents.endCursor ?? null : null);
  };
  const runVerify = async () => {
    setVerify(t("working"));
    const r = await client.query(VerifyDocument, {}, { requestPolicy: "network-only" }).toPromise();
    if (r.error || !r.data) return setProblem(transportError(r.error));
    const v = r.data.verifyAudit;
    setVerify(v.ok ? t("audit.verified", { n: v.checked }) : t("audit.broken", { seq: v.brokenAtSequence ?? "?", problem: v.problem ?? "" }));
  };

  return (
    <>
      <div class="title-row">
        <h1>{t("nav.audit")}</h1>
        <div class="actions">
          <button onClick={runVerify}>{t("audit.verify")}</button>
          <button onClick={() => exportTrail().catch((e: unknown) => setProblem({ message: String(e instanceof Error ? e.message : e) }))}>
            {t("audit.export")}
          </button>
        </div>
      </div>
      {verify && <p class="notice info" data-testid="audit-verify">{verify}</p>}
      <form class="filters" onSubmit={apply}>
        <select name="project" aria-label={t("col.project")} value={draft.projectId} onChange={(e) => setDraft({ ...draft, projectId: e.currentTarget.value })}>
          <option value="">{t("audit.allProjects")}</option>
          {data?.projects.nodes.map((p) => <option key={p.id} value={p.id}>{p.slug}</option>)}
        </select>
        <input name="actor" placeholder={t("audit.actor")} aria-label={t("audit.actor")} value={draft.actor} onInput={(e) => setDraft({ ...draft, actor: e.currentTarget.value })} />
        <input name="action" placeholder={t("audit.action")} aria-label={t("audit.action")} value={draft.action} onInput={(e) => setDraft({ ...draft, action: e.currentTarget.value })} />
        <select name="outcome" aria-label={t("audit.outcome")} value={draft.outcome} onChange={(e) => setDraft({ ...draft, outcome: e.currentTarget.value })}>
          <option value="">{t("audit.anyOutcome")}</option>
          <option value="SUCCEEDED">{t("phase.SUCCEEDED")}</option>
          <option value="DENIED">{t("phase.DENIED")}</option>
        </select>
        <button type="submit" class="primary">{t("audit.filter")}</button>
      </form>
      <ErrorNotice error={transportError(error) ?? problem} onDismiss={() => setProblem(null)} />
      {fetching && !data ? (
        <p class="loading">{t("loading")}</p>
      ) : rows.length === 0 ? (
        <p class="muted">{t("audit.none")}</p>
      ) : (
        <table class="audit" data-testid="audit">
          <thead>
            <tr>
              <th>{t("col.time")}</th><th>{t("audit.actor")}</th><th>{t("audit.action")}</th><th>{t("audit.outcome")}</th><th>{t("audit.entity")}</th><th />
            </tr>
          </thead>
          <tbody>{rows.map((row) => <Entry key={row.id} row={row} />)}</tbody>
        </table>
      )}
      {hasNext && <button onClick={loadMore}>{t("audit.more")}</button>}
    </>
  );
}
