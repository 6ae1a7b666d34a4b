// Numbers and times the way every view shows them.

/** `rel_…7CCAA6`: IDs are ULIDs whose first characters are the time, shared by everything
 * made in the same moment, so the random tail is what tells two apart. */
export function shortId(id: string | null | undefined): string {
  if (!id) return "—";
  const [prefix, rest] = id.split("_", 2);
  return rest ? `${prefix}_…${rest.slice(-6)}` : id.slice(0, 12);
}

/** A release as people name it: its short ID, and its commit when it has one (two releases
 * of one commit differ only by ID). */
export function releaseName(release: { id: string; gitSha?: string | null }): string {
  return release.gitSha ? `${shortId(release.id)} @ ${release.gitSha.slice(0, 7)}` : shortId(release.id);
}

export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return "—";
  const seconds = Math.round((now - Date.parse(iso)) / 1000);
  if (seconds < 5) return "now";
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86400)}d`;
}

export function clock(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { hour12: false });
}

export function timeOfDay(iso: string): string {
  const d = new Date(iso);
  const pad = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

export function percent(ratio: number | null | undefined, digits = 1): string {
  if (ratio == null || Number.isNaN(ratio)) return "—";
  return `${(ratio * 100).toFixed(digits)} %`;
}

export function ms(value: number | null | undefined): string {
  if (value == null) return "—";
  return value >= 100 ? `${Math.round(value)} ms` : `${value.toFixed(1)} ms`;
}

export function rate(value: number | null | undefined): string {
  if (value == null) return "—";
  return value >= 10 ? `${Math.round(value)}/s` : `${value.toFixed(2)}/s`;
}

/** Who made something: the person's name, or the actor as recorded (a controller). */
export function creator(row: { createdBy: string; createdByUser?: { displayName: string } | null }): string {
  return row.createdByUser?.displayName ?? row.createdBy;
}
