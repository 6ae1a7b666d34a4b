// The service's actions, each the same operation as its CLI verb: deploy, rollback, scale.
// Destructive ones confirm first; every failure shows the server's words.

import { useState } from "preact/hooks";
import { useLocation } from "wouter-preact";
import { useAction } from "../../api/useAction";
import type { DeploymentStrategy } from "../../gql/graphql";
import { t } from "../../i18n";
import { Dialog } from "../../ui/Dialog";
import { ErrorNotice } from "../../ui/ErrorNotice";
import { ago, releaseName, creator } from "../../ui/format";
import { DeployMutation, RollbackMutation, ScaleMutation } from "./documents";
import { Provenance, type ReleaseRow } from "./Releases";

type Props = { serviceId: string; releases: ReleaseRow[]; servingId: string | null };

function releaseLabel(r: ReleaseRow): string {
  return `${releaseName(r)} · ${ago(r.createdAt)} · ${creator(r)}`;
}

export function DeployButton({ serviceId, releases, servingId }: Props) {
  const [, navigate] = useLocation();
  const ready = releases.filter((r) => r.status === "READY" || r.status === "PENDING" || r.status === "BUILDING");
  const [open, setOpen] = useState(false);
  const [releaseId, setReleaseId] = useState<string>("");
  const [strategy, setStrategy] = useState<"" | DeploymentStrategy>("");
  const action = useAction(DeployMutation, "deploy", "DeploySuccess");
  const chosen = releaseId || ready.find((r) => r.id !== servingId)?.id || ready[0]?.id || "";
  const submit = async () => {
    const result = await action.run({
      input: { serviceId, releaseId: chosen, strategy: strategy || null },
    });
    if (result && result.__typename === "DeploySuccess") navigate(`/deployments/${result.deployment.id}`);
  };
  return (
    <>
      <button class="primary" onClick={() => { action.clear(); setOpen(true); }} disabled={ready.length === 0} title={ready.length === 0 ? t("deploy.noRelease") : undefined}>
        {t("action.deploy")}
      </button>
      <Dialog title={t("action.deploy")} open={open} onClose={() => setOpen(false)} onSubmit={submit} submitLabel={t("action.deploy")} busy={action.busy}>
        <label for="deploy-release">{t("col.release")}</label>
        <select id="deploy-release" value={chosen} onChange={(e) => setReleaseId(e.currentTarget.value)}>
          {ready.map((r) => (
            <option key={r.id} value={r.id}>
              {releaseLabel(r)}{r.id === servingId ? ` (${t("release.serving")})` : ""}
            </option>
          ))}
        </select>
        <label for="deploy-strategy">{t("deploy.strategy")}</label>
        <select id="deploy-strategy" value={strategy} onChange={(e) => setStrategy(e.currentTarget.value as DeploymentStrategy | "")}>
          <option value="">{t("deploy.strategy.spec")}</option>
          <option value="ROLLING">{t("deploy.strategy.rolling")}</option>
          <option value="BLUE_GREEN">{t("deploy.strategy.bluegreen")}</option>
          <option value="CANARY">{t("deploy.strategy.canary")}</option>
        </select>
        <ErrorNotice error={action.error} />
      </Dialog>
    </>
  );
}

export function RollbackButton({ serviceId, releases, servingId }: Props) {
  const [, navigate] = useLocation();
  const earlier = releases.filter((r) => r.status === "READY" && r.id !== servingId);
  const [open, setOpen] = useState(false);
  const [target, setTarget] = useState<string>("");
  const action = useAction(RollbackMutation, "rollback", "RollbackSuccess");
  const chosenId = target || earlier[0]?.id || "";
  const chosen = earlier.find((r) => r.id === chosenId);
  const submit = async () => {
    const result = await action.run({ input: { serviceId, toReleaseId: chosenId || null } });
    if (result && result.__typename === "RollbackSuccess") navigate(`/deployments/${result.deployment.id}`);
  };
  return (
    <>
      <button class="danger" onClick={() => { action.clear(); setOpen(true); }} disabled={earlier.length === 0} title={earlier.length === 0 ? t("rollback.none") : undefined}>
        {t("action.rollback")}
      </button>
      <Dialog title={t("action.rollback")} open={open} onClose={() => setOpen(false)} onSubmit={submit} submitLabel={t("rollback.confirm")} danger busy={action.busy}>
        <p>{t("rollback.lead")}</p>
        <label for="rollback-release">{t("rollback.to")}</label>
        <select id="rollback-release" value={chosenId} onChange={(e) => setTarget(e.currentTarget.value)}>
          {earlier.map((r) => (
            <option key={r.id} value={r.id}>{releaseLabel(r)}</option>
          ))}
        </select>
        {chosen && <Provenance release={chosen} />}
        <ErrorNotice error={action.error} />
      </Dialog>
    </>
  );
}

export function ScaleButton({ serviceId, min, max }: { serviceId: string; min: number; max: number }) {
  const [open, setOpen] = useState(false);
  const [lo, setLo] = useState(String(min));
  const [hi, setHi] = useState(String(max));
  const action = useAction(ScaleMutation, "scaleService", "ApplyServiceSuccess");
  const submit = async () => {
    const parse = (v: string) => (v.trim() === "" ? null : Number(v));
    const result = await action.run({ input: { serviceId, min: parse(lo), max: parse(hi) } });
    if (result) setOpen(false);
  };
  return (
    <>
      <button onClick={() => { action.clear(); setLo(String(min)); setHi(String(max)); setOpen(true); }}>{t("action.scale")}</button>
      <Dialog title={t("action.scale")} open={open} onClose={() => setOpen(false)} onSubmit={submit} submitLabel={t("action.scale")} busy={action.busy}>
        <p class="muted">{t("scale.lead")}</p>
        <div class="row">
          <label>
            {t("scale.min")}
            <input name="min" type="number" min={0} value={lo} onInput={(e) => setLo(e.currentTarget.value)} />
          </label>
          <label>
            {t("scale.max")}
            <input name="max" type="number" min={1} value={hi} onInput={(e) => setHi(e.currentTarget.value)} />
          </label>
        </div>
        <ErrorNotice error={action.error} />
      </Dialog>
    </>
  );
}
