import type { ServiceQuery } from "../../gql/graphql";
import { t } from "../../i18n";
import { Badge } from "../../ui/Badge";
import { clock, releaseName } from "../../ui/format";

type RuntimeRow = NonNullable<ServiceQuery["service"]>["runtimes"]["nodes"][number];

/** Every release with replicas: serving, rolling out, or warm for a rollback. */
export function RuntimePanel({ runtimes }: { runtimes: RuntimeRow[] }) {
  if (runtimes.length === 0) return <p class="muted">{t("runtime.none")}</p>;
  return (
    <div class="runtimes" data-testid="runtime">
      {runtimes.map((rt) => (
        <div class="runtime" key={rt.id}>
          <div class="runtime-head">
            <code>{releaseName(rt.release)}</code>
            <Badge value={rt.status} />
            <span class="weight" title={t("runtime.weight")}>{rt.weight} %</span>
            <span class="muted">{rt.replicasReady}/{rt.replicasDesired} {t("runtime.ready")}</span>
            {rt.warmUntil && rt.weight === 0 && <span class="muted small">{t("runtime.warm", { until: clock(rt.warmUntil) })}</span>}
            {rt.scaleReason && <span class="muted small">{rt.scaleReason}</span>}
          </div>
          <ul class="replicas">
            {rt.replicas.map((r) => (
              <li key={r.name} class={r.ready ? "ready" : "not-ready"} title={r.message}>
                <span class="dot" /> {r.name} <span class="muted small">{r.phase.toLowerCase()}{r.restarts ? ` · ${t("runtime.restarts", { n: r.restarts })}` : ""}</span>
                {!r.ready && r.message && <span class="muted small"> — {r.message}</span>}
              </li>
            ))}
          </ul>
        </div>
      ))}
    </div>
  );
}
