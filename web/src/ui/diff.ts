// What an audited change did: the payload's `before` and `after` flattened to dotted paths
// and compared, so a spec change reads "replicas.max 3 → 5" instead of two JSON blobs.

export type Change = { path: string; kind: "added" | "removed" | "changed"; before?: string; after?: string };

function flatten(value: unknown, prefix: string, out: Map<string, string>): void {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length === 0 && prefix) out.set(prefix, "{}");
    for (const [k, v] of entries) flatten(v, prefix ? `${prefix}.${k}` : k, out);
    return;
  }
  if (Array.isArray(value) && value.some((v) => v !== null && typeof v === "object")) {
    if (value.length === 0) out.set(prefix, "[]");
    value.forEach((v, i) => flatten(v, `${prefix}[${i}]`, out));
    return;
  }
  out.set(prefix, JSON.stringify(value));
}

export function diff(before: unknown, after: unknown): Change[] {
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  if (before != null) flatten(before, "", a);
  if (after != null) flatten(after, "", b);
  const paths = [...new Set([...a.keys(), ...b.keys()])].sort();
  const changes: Change[] = [];
  for (const path of paths) {
    const x = a.get(path);
    const y = b.get(path);
    if (x === y) continue;
    if (x === undefined) changes.push({ path, kind: "added", after: y });
    else if (y === undefined) changes.push({ path, kind: "removed", before: x });
    else changes.push({ path, kind: "changed", before: x, after: y });
  }
  return changes;
}
