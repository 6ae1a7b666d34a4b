import { tOr } from "../i18n";

const TONE: Record<string, string> = {
  HEALTHY: "ok", READY: "ok", RUNNING: "ok", SUCCEEDED: "ok", PASS: "ok", DELIVERED: "ok",
  QUEUED: "info", BUILDING: "info", DEPLOYING: "info", PENDING: "info", ROLLING_OUT: "info",
  INCONCLUSIVE: "info", STARTING: "info",
  FAILED: "bad", ROLLED_BACK: "bad", DENIED: "bad", FAIL: "bad", CRASH_LOOP: "bad", DEGRADED: "warn",
  SUPERSEDED: "muted", WARM: "muted", STOPPED: "muted",
};

/** A status word from the API with its colour; the phases we know are translated. */
export function Badge({ value }: { value: string | null | undefined }) {
  if (!value) return <span class="badge muted">—</span>;
  const label = tOr(`phase.${value}`, value.toLowerCase().replace(/_/g, " "));
  return (
    <span class={`badge ${TONE[value] ?? "muted"}`} data-status={value}>
      {label}
    </span>
  );
}
