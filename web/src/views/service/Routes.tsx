import { useState } from "preact/hooks";
import { useAction } from "../../api/useAction";
import type { ServiceQuery } from "../../gql/graphql";
import { t } from "../../i18n";
import { Dialog } from "../../ui/Dialog";
import { ErrorNotice } from "../../ui/ErrorNotice";
import { AddRouteMutation, RemoveRouteMutation } from "./documents";

type RouteRow = NonNullable<ServiceQuery["service"]>["routes"]["nodes"][number];

export function RoutesPanel({ serviceId, routes, canEdit, onChange }: { serviceId: string; routes: RouteRow[]; canEdit: boolean; onChange: () => void }) {
  const [host, setHost] = useState("");
  const [path, setPath] = useState("/");
  const [removing, setRemoving] = useState<RouteRow | null>(null);
  const add = useAction(AddRouteMutation, "addRoute", "AddRouteSuccess");
  const remove = useAction(RemoveRouteMutation, "removeRoute", "RemoveRouteSuccess");

  const submit = async (e: Event) => {
    e.preventDefault();
    const ok = await add.run({ input: { serviceId, host: host.trim(), path: path.trim() || null } });
    if (ok) {
      setHost("");
      setPath("/");
      onChange();
    }
  };
  const confirmRemove = async () => {
    if (!removing) return;
    const ok = await remove.run({ input: { id: removing.id } });
    if (ok) {
      setRemoving(null);
      onChange();
    }
  };
  return (
    <div data-testid="routes">
      {routes.length === 0 ? (
        <p class="muted">{t("routes.none")}</p>
      ) : (
        <ul class="routes">
          {routes.map((r) => (
            <li key={r.id}>
              <code>{r.host}{r.path}</code> <span class="muted small">{r.source === "SPEC" ? t("routes.fromSpec") : t("routes.added")}</span>
              {canEdit && r.source !== "SPEC" && (
                <button class="link danger" onClick={() => { remove.clear(); setRemoving(r); }}>{t("action.remove")}</button>
              )}
            </li>
          ))}
        </ul>
      )}
      {canEdit && (
        <form class="inline" onSubmit={submit}>
          <input name="host" placeholder="api.example.com" value={host} onInput={(e) => setHost(e.currentTarget.value)} aria-label={t("routes.host")} />
          <input name="path" placeholder="/" value={path} onInput={(e) => setPath(e.currentTarget.value)} aria-label={t("routes.path")} />
          <button type="submit" disabled={add.busy}>{t("routes.add")}</button>
        </form>
      )}
      <ErrorNotice error={add.error} onDismiss={add.clear} />
      <Dialog
        title={t("routes.removeTitle")}
        open={removing !== null}
        onClose={() => setRemoving(null)}
        onSubmit={confirmRemove}
        submitLabel={t("action.remove")}
        danger
        busy={remove.busy}
      >
        <p>{t("routes.removeLead", { route: removing ? `${removing.host}${removing.path}` : "" })}</p>
        <ErrorNotice error={remove.error} />
      </Dialog>
    </div>
  );
}
