// A deployment as it happens: its phase and conditions, pushed by the deploymentStatus
// subscription, and for a canary the live analysis and the promote, pause and abort actions.

import { useQuery, useSubscription } from "@urql/preact";
import { useState } from "preact/hooks";
import { Link } from "wouter-preact";
import { transportError } from "../api/errors";
import { useAction } from "../api/useAction";
import type { DeploymentFieldsFragment } from "../gql/graphql";
import { t } from "../i18n";
import { Badge } from "../ui/Badge";
import { Dialog } from "../ui/Dialog";
import { ErrorNotice } from "../ui/ErrorNotice";
import { ago, clock, shortId, releaseName, creator } from "../ui/format";
import { useNow } from "../ui/hooks";
import { CanaryPanel } from "./deployment/Canary";
import { AbortMutation, DeploymentDocument, DeploymentStatusSubscription, PauseMutation, PromoteMutation } from "./deployment/documents";

const PHASES = ["QUEUED", "BUILDING", "DEPLOYING"] as const;
const ENDED = new Set(["HEALTHY", "FAILED", "ROLLED_BACK", "SUPERSEDED"]);

export function DeploymentView({ id }: { id: string }) {
  const [{ data, error }] = useQuery({ query: DeploymentDocument, variables: { id } });
  const [live, setLive] = useState<DeploymentFieldsFragment | null>(null);
  useSubscription({ query: DeploymentStatusSubscription, variables: { id } }, (_prev, next) => {
    setLive(next.deploymentStatus.deployment);
    return next;
  });
  useNow(1000);
  const d = live ?? data?.deployment ?? null;
  if (!d) return error ? <ErrorNotice error={transportError(error)} /> : <p class="loading">{t("loading")}</p>;
  const ended = ENDED.has(d.phase);
  const s = d.service;
  const reached = ended ? PHASES.length : PHASES.indexOf(d.phase as (typeof PHASES)[number]);
  return (
    <>
      <nav class="crumbs">
        <Link href={`/projects/${s.project.slug}`}>{s.project.slug}</Link> / {s.environment.name} /{" "}
        <Link href={`/projects/${s.project.slug}/${s.environment.name}/${s.name}`}>{s.name}</Link>
      </nav>
      <div class="title-row">
        <h1>
          {d.kind === "ROLLBACK" ? t("deploy.kind.rollback") : t("deploy.kind.deploy")} <code>{shortId(d.id)}</code>
        </h1>
        {d.canary && s.project.viewerCan.deploy && !ended && <CanaryActions id={d.id} paused={Boolean(d.canary.pausedBy)} />}
      </div>
      <p class="phase-line" data-testid="phase">
        <Badge value={d.phase} /> {d.reason && <span class="reason">{d.reason}</span>}
      </p>
      <ol class="timeline">
        {PHASES.map((p, i) => (
          <li key={p} class={i < reached ? "done" : i === reached ? "current" : ""}>{t(`phase.${p}`)}</li>
        ))}
        <li class={ended ? "done end" : ""}>{ended ? t(`phase.${d.phase as "HEALTHY"}`) : "…"}</li>
      </ol>
      <dl class="facts">
        <dt>{t("col.release")}</dt>
        <dd>
          <code>{d.fromRelease ? releaseName(d.fromRelease) : "∅"}</code> →{" "}
          <code>{releaseName(d.toRelease)}</code>
        </dd>
        <dt>{t("deploy.strategy")}</dt>
        <dd>{d.strategy.toLowerCase().replace("_", "-")}{d.fix ? ` · ${t("deploy.fix")}` : ""}</dd>
        <dt>{t("deploy.by")}</dt>
        <dd>{creator(d)}</dd>
        <dt>{t("col.created")}</dt>
        <dd title={d.createdAt}>{clock(d.createdAt)} ({ago(d.createdAt)})</dd>
        {d.finishedAt && (
          <>
            <dt>{t("deploy.finished")}</dt>
            <dd>{clock(d.finishedAt)}</dd>
          </>
        )}
        {!ended && d.deadlineAt && (
          <>
            <dt>{t("deploy.deadline")}</dt>
            <dd>{clock(d.deadlineAt)}</dd>
          </>
        )}
      </dl>
      <section>
        <h2>{t("deploy.conditions")}</h2>
        <table data-testid="conditions">
          <thead>
            <tr><th>{t("col.type")}</th><th>{t("col.status")}</th><th>{t("canary.reason")}</th><th>{t("col.time")}</th></tr>
          </thead>
          <tbody>
            {d.conditions.map((c) => (
              <tr key={c.type}>
                <td>{c.type}</td>
                <td><span class={`badge ${c.status === "True" ? "ok" : c.status === "False" ? "bad" : "muted"}`}>{c.status}</span></td>
                <td>{c.reason}{c.message && <span class="muted"> — {c.message}</span>}</td>
                <td class="muted">{ago(c.lastTransitionTime)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
      {d.canary && <CanaryPanel id={d.id} canary={d.canary} ended={ended} />}
    </>
  );
}

function CanaryActions({ id, paused }: { id: string; paused: boolean }) {
  const promote = useAction(PromoteMutation, "promoteDeployment", "DeploymentOverrideSuccess");
  const pause = useAction(PauseMutation, "pauseDeployment", "DeploymentOverrideSuccess");
  const abort = useAction(AbortMutation, "abortDeployment", "DeploymentOverrideSuccess");
  const [confirmFull, setConfirmFull] = useState(false);
  const [confirmAbort, setConfirmAbort] = useState(false);
  const [reason, setReason] = useState("");
  return (
    <div class="actions" data-testid="canary-actions">
      <button onClick={() => promote.run({ input: { deploymentId: id, full: false } })} disabled={promote.busy}>
        {paused ? t("canary.resume") : t("canary.promoteStep")}
      </button>
      <button onClick={() => { promote.clear(); setConfirmFull(true); }}>{t("canary.promoteFull")}</button>
      {!paused && <button onClick={() => pause.run({ input: { deploymentId: id } })} disabled={pause.busy}>{t("canary.pause")}</button>}
      <button class="danger" onClick={() => { abort.clear(); setConfirmAbort(true); }}>{t("canary.abort")}</button>
      <ErrorNotice error={promote.error ?? pause.error} onDismiss={() => { promote.clear(); pause.clear(); }} />
      <Dialog
        title={t("canary.promoteFull")}
        open={confirmFull}
        onClose={() => setConfirmFull(false)}
        submitLabel={t("canary.promoteFull")}
        busy={promote.busy}
        onSubmit={async () => {
          if (await promote.run({ input: { deploymentId: id, full: true } })) setConfirmFull(false);
        }}
      >
        <p>{t("canary.promoteFullLead")}</p>
        <ErrorNotice error={promote.error} />
      </Dialog>
      <Dialog
        title={t("canary.abort")}
        open={confirmAbort}
        onClose={() => setConfirmAbort(false)}
        submitLabel={t("canary.abort")}
        danger
        busy={abort.busy}
        onSubmit={async () => {
          if (await abort.run({ input: { deploymentId: id, reason: reason.trim() || null } })) setConfirmAbort(false);
        }}
      >
        <p>{t("canary.abortLead")}</p>
        <label for="abort-reason">{t("canary.reason")}</label>
        <input id="abort-reason" value={reason} onInput={(e) => setReason(e.currentTarget.value)} />
        <ErrorNotice error={abort.error} />
      </Dialog>
    </div>
  );
}
