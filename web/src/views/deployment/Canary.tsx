// A canary's analysis as it happens: the steps, the weight, and every check charted —
// canary against stable, for the 5xx rate and for P95 — with the verdict and its reason.

import { useSubscription } from "@urql/preact";
import { useState } from "preact/hooks";
import type { CanarySampleFieldsFragment, DeploymentFieldsFragment } from "../../gql/graphql";
import { t } from "../../i18n";
import { Badge } from "../../ui/Badge";
import { LineChart } from "../../ui/charts";
import { ms, percent, timeOfDay } from "../../ui/format";
import { CanaryMetricsSubscription } from "./documents";

type Canary = NonNullable<DeploymentFieldsFragment["canary"]>;
type Sample = CanarySampleFieldsFragment;
type Step = Canary["steps"][number];

function stepLabel(step: Step): string {
  if (step.setWeight != null) return t("canary.step.weight", { n: step.setWeight });
  if (step.analysis) return t("canary.step.analysis");
  if (step.pauseUntilPromoted) return t("canary.step.pauseManual");
  return t("canary.step.pause", { n: step.pauseSeconds ?? 0 });
}

export function CanaryPanel({ id, canary, ended }: { id: string; canary: Canary; ended: boolean }) {
  const [samples, setSamples] = useState<Sample[]>([]);
  useSubscription({ query: CanaryMetricsSubscription, variables: { id, after: null } }, (_prev, next) => {
    const sample = next.canaryMetrics;
    setSamples((list) =>
      sample.sequence != null && list.some((s) => s.sequence === sample.sequence) ? list : [...list, sample],
    );
    return next;
  });
  const latest = samples[samples.length - 1] ?? null;
  const x = (s: Sample) => Date.parse(s.at);
  const policy = canary.analysis;
  return (
    <section class="canary" data-testid="canary">
      <h2>{t("canary.title")}</h2>
      <div class="weight-bar" role="meter" aria-valuenow={canary.weight} aria-valuemin={0} aria-valuemax={100} aria-label={t("canary.weight")}>
        <div class="canary-share" style={{ width: `${canary.weight}%` }}>{t("canary.canary")} {canary.weight} %</div>
        <div class="stable-share">{t("canary.stable")} {100 - canary.weight} %</div>
      </div>
      <ol class="steps">
        {canary.steps.map((s, i) => (
          <li key={i} class={i < canary.step ? "done" : i === canary.step && !ended ? "current" : ""}>{stepLabel(s)}</li>
        ))}
      </ol>
      {canary.pausedBy && !ended && <p class="notice warn">{t("canary.pausedBy", { who: canary.pausedBy })}</p>}
      {canary.decision && (
        <p class="notice info" data-testid="canary-decision">
          <strong>{canary.decision.automated ? t("canary.decidedAuto") : t("canary.decidedManual")}</strong> {canary.decision.reason}
        </p>
      )}
      <p class="muted small">
        {t("canary.policy", {
          interval: policy.intervalSeconds,
          window: policy.windowSeconds,
          err: policy.maxErrorRatePercent,
          ratio: policy.maxP95Ratio,
          min: policy.minRequests,
          fails: policy.failuresToAbort,
        })}
      </p>
      {samples.length === 0 ? (
        <p class="muted">{t("canary.noChecks")}</p>
      ) : (
        <div class="charts">
          <LineChart
            title={t("canary.errorRate")}
            yLabel={(y) => percent(y, 1)}
            xLabel={(v) => timeOfDay(new Date(v).toISOString()).slice(0, 8)}
            threshold={{ y: policy.maxErrorRatePercent / 100, label: t("canary.limit") }}
            series={[
              { name: t("canary.canary"), className: "s-canary", points: samples.map((s) => ({ x: x(s), y: s.canary.errorRate })) },
              { name: t("canary.stable"), className: "s-stable", points: samples.map((s) => ({ x: x(s), y: s.stable.errorRate })) },
            ]}
          />
          <LineChart
            title={t("canary.p95")}
            yLabel={(y) => ms(y)}
            xLabel={(v) => timeOfDay(new Date(v).toISOString()).slice(0, 8)}
            series={[
              { name: t("canary.canary"), className: "s-canary", points: samples.map((s) => ({ x: x(s), y: s.canary.p95Ms ?? null })) },
              { name: t("canary.stable"), className: "s-stable", points: samples.map((s) => ({ x: x(s), y: s.stable.p95Ms ?? null })) },
            ]}
          />
        </div>
      )}
      {latest && (
        <table class="checks">
          <thead>
            <tr>
              <th>{t("col.time")}</th>
              <th>{t("canary.weight")}</th>
              <th>{t("canary.verdict")}</th>
              <th class="num">{t("canary.canary")}</th>
              <th class="num">{t("canary.stable")}</th>
              <th>{t("canary.reason")}</th>
            </tr>
          </thead>
          <tbody>
            {[...samples].reverse().slice(0, 20).map((s) => (
              <tr key={s.sequence ?? s.at}>
                <td>{timeOfDay(s.at).slice(0, 8)}</td>
                <td>{s.weight} %</td>
                <td><Badge value={s.verdict} /></td>
                <td class="num">{s.canary.requests} · {percent(s.canary.errorRate, 2)} · {ms(s.canary.p95Ms)}</td>
                <td class="num">{s.stable.requests} · {percent(s.stable.errorRate, 2)} · {ms(s.stable.p95Ms)}</td>
                <td class="reason">{s.reason}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
