"""What the CLI says to people, in English and Spanish (chosen by ``LC_ALL``, ``LC_MESSAGES``
or ``LANG``: ``es…`` is Spanish, anything else English). Machine output (``--json``,
NDJSON streams) is never translated.

The product spec's status phrases are kept exactly: "Clear to deploy / Despliegue
autorizado" when a deployment is healthy, "Holding at Junction / En espera en Enlace"
while one waits for its traffic to move.
"""

from __future__ import annotations

import os
from typing import Final

MESSAGES: Final[dict[str, tuple[str, str]]] = {
    # key: (English, Spanish)
    "clear": ("Clear to deploy", "Despliegue autorizado"),
    "holding": ("Holding at Junction", "En espera en Enlace"),
    "deploy.healthy": (
        "Clear to deploy — {service} runs release {release} ({url})",
        "Despliegue autorizado — {service} ejecuta la versión {release} ({url})",
    ),
    "deploy.failed": (
        "Deployment {deployment} failed: {reason}",
        "El despliegue {deployment} falló: {reason}",
    ),
    "deploy.rolled_back": (
        "Deployment {deployment} was rolled back: {reason}",
        "El despliegue {deployment} fue revertido: {reason}",
    ),
    "deploy.queued": (
        "Deployment {deployment} of release {release} queued; follow it with "
        "`enclii status {deployment}`",
        "Despliegue {deployment} de la versión {release} en cola; síguelo con "
        "`enclii status {deployment}`",
    ),
    "deploy.waiting": (
        "Holding at Junction — {phase}: {progress}",
        "En espera en Enlace — {phase}: {progress}",
    ),
    "build.start": ("Building {service} from {folder}", "Construyendo {service} desde {folder}"),
    "build.ready": ("Release {release} built and signed", "Versión {release} construida y firmada"),
    "build.failed": (
        "The build of release {release} failed: {reason}",
        "La construcción de la versión {release} falló: {reason}",
    ),
    "created.project": (
        "Created project {project} (it did not exist)",
        "Proyecto {project} creado (no existía)",
    ),
    "created.environment": (
        "Created environment {environment} in {project} (it did not exist)",
        "Entorno {environment} creado en {project} (no existía)",
    ),
    "spec.applied": (
        "Applied {service}: spec version {version}{note}",
        "{service} aplicado: versión de especificación {version}{note}",
    ),
    "spec.unchanged": (" (unchanged)", " (sin cambios)"),
    "canary.sample": (
        "Canary at {weight}% — {verdict}: canary {canary}; stable {stable} ({reason})",
        "Canario al {weight}% — {verdict}: canario {canary}; estable {stable} ({reason})",
    ),
    "canary.promoted": (
        "Deployment {deployment} promoted past its current step",
        "Despliegue {deployment} promovido más allá de su paso actual",
    ),
    "canary.promoted_full": (
        "Deployment {deployment} promoted: it takes all traffic now",
        "Despliegue {deployment} promovido: ahora recibe todo el tráfico",
    ),
    "canary.paused": (
        "Deployment {deployment} paused at its weight; `enclii promote {deployment}` resumes it",
        "Despliegue {deployment} en pausa con su peso; `enclii promote {deployment}` lo reanuda",
    ),
    "canary.aborted": (
        "Deployment {deployment} aborted: traffic returns to the stable release",
        "Despliegue {deployment} abortado: el tráfico vuelve a la versión estable",
    ),
    "slo.none": (
        "{service} has no SLO: add `slo: {{availability: 99.9}}` to its spec",
        "{service} no tiene SLO: añade `slo: {{availability: 99.9}}` a su especificación",
    ),
    "slo.open": (
        "{service}: {spent} of the error budget spent over {days} days ({requests} requests); "
        "deploys are open",
        "{service}: {spent} del presupuesto de errores gastado en {days} días ({requests} "
        "solicitudes); los despliegues están abiertos",
    ),
    "slo.frozen": (
        "{service}: the error budget is spent ({spent} over {days} days); deploys are frozen "
        "except `enclii deploy --strategy canary --fix`",
        "{service}: el presupuesto de errores está agotado ({spent} en {days} días); los "
        "despliegues están congelados salvo `enclii deploy --strategy canary --fix`",
    ),
    "alerts.none": (
        "No alerts were sent about {service}",
        "No se envió ninguna alerta sobre {service}",
    ),
    "rollback.done": (
        "Rolling back {service} to release {release} (deployment {deployment})",
        "Revirtiendo {service} a la versión {release} (despliegue {deployment})",
    ),
    "logs.reconnecting": (
        "Connection lost ({error}); reconnecting in {delay:.1f}s from line {cursor}",
        "Conexión perdida ({error}); reconectando en {delay:.1f}s desde la línea {cursor}",
    ),
    "logs.empty": (
        "No log lines yet for {service}. Deploy it with `enclii deploy`.",
        "Aún no hay líneas de log de {service}. Despliégalo con `enclii deploy`.",
    ),
    "empty.services": (
        "No services in {project}/{environment} yet. Start with `enclii init`, then "
        "`enclii deploy --env {environment}`.",
        "Aún no hay servicios en {project}/{environment}. Empieza con `enclii init` y luego "
        "`enclii deploy --env {environment}`.",
    ),
    "empty.releases": (
        "{service} has no releases yet. Build one with `enclii deploy`.",
        "{service} aún no tiene versiones. Construye una con `enclii deploy`.",
    ),
    "empty.routes": (
        "{service} has only its default route. Add one with `enclii routes add`.",
        "{service} solo tiene su ruta por defecto. Añade una con `enclii routes add`.",
    ),
    "route.added": ("Route {host}{path} → {service}", "Ruta {host}{path} → {service}"),
    "route.removed": ("Route {host}{path} removed", "Ruta {host}{path} eliminada"),
    "auth.saved": (
        "Signed in to {url} as {user}; profile {profile} saved in {path}",
        "Sesión iniciada en {url} como {user}; perfil {profile} guardado en {path}",
    ),
    "auth.forgot": ("Signed out of profile {profile}", "Sesión cerrada del perfil {profile}"),
    "auth.nothing": ("Profile {profile} holds no token", "El perfil {profile} no tiene token"),
    "token.created": (
        "Token {name} created; it is shown this once:",
        "Token {name} creado; se muestra solo esta vez:",
    ),
    "role.none": ("none", "ninguno"),
    "can.nothing": ("nothing", "nada"),
    "can.deploy": ("deploy", "desplegar"),
    "can.routes": ("routes", "rutas"),
    "can.observe": ("observe", "observar"),
    "can.read_audit": ("read audit", "leer la auditoría"),
    "can.write_project": ("write project", "modificar el proyecto"),
    "can.write_environments": ("write environments", "modificar entornos"),
    "can.manage_roles": ("manage roles", "gestionar roles"),
    "can.read_cost": ("read cost", "leer costes"),
    "stats.all": ("All projects", "Todos los proyectos"),
    "stats.project": ("Project {project}", "Proyecto {project}"),
    "stats.summary": (
        "{scope}, {first} to {last} (UTC): deploys {deploys}, succeeded {succeeded}, "
        "failed {failed}, rolled back {rolled_back}; {rate}",
        "{scope}, del {first} al {last} (UTC): despliegues {deploys}, correctos {succeeded}, "
        "fallidos {failed}, revertidos {rolled_back}; {rate}",
    ),
    "stats.rate": ("success rate {rate}", "tasa de éxito {rate}"),
    "stats.unfinished": ("no finished deploys", "ningún despliegue terminado"),
    "stats.rollbacks": ("Recent rollbacks:", "Reversiones recientes:"),
    "stats.no_rollbacks": ("No rollbacks in these days", "Ninguna reversión en estos días"),
    "missing.spec": (
        "no {file} here: describe the service first (`enclii init`), or give --file PATH",
        "no hay {file} aquí: describe primero el servicio (`enclii init`) o indica --file RUTA",
    ),
    "missing.service": (
        "no service '{name}' in {project}/{environment} (or you may not see it); "
        "`enclii ps --env {environment}` lists them",
        "no hay un servicio '{name}' en {project}/{environment} (o no puedes verlo); "
        "`enclii ps --env {environment}` los lista",
    ),
    "missing.target": (
        "say which {what}: there is no {file} here to take it from (or it does not say)",
        "indica {what}: no hay un {file} aquí del que tomarlo (o no lo dice)",
    ),
    "missing.project": (
        "no project '{project}' (or you may not see it)",
        "no existe el proyecto '{project}' (o no puedes verlo)",
    ),
    "missing.environment": (
        "no environment '{environment}' in {project}",
        "no existe el entorno '{environment}' en {project}",
    ),
    "scaled": (
        "{service}: replicas {min}..{max} (spec version {version}{note})",
        "{service}: réplicas {min}..{max} (versión de especificación {version}{note})",
    ),
    "init.wrote": (
        "Wrote {files}: a {language} {template} service named {service}.",
        "Escrito {files}: un servicio {template} en {language} llamado {service}.",
    ),
    "init.next": (
        "Next: enclii deploy --env {env} --wait",
        "Siguiente: enclii deploy --env {env} --wait",
    ),
    "init.no_program": (
        "{file} runs {program}, which is not here: set spec.runtime.cmd",
        "{file} ejecuta {program}, que no está aquí: ajusta spec.runtime.cmd",
    ),
    "up.preview": (
        "Preview environment {environment} (branch {branch})",
        "Entorno de vista previa {environment} (rama {branch})",
    ),
    "up.no_branch": ("none: not a git tree", "ninguna: no es un árbol git"),
    "spec.bounds": (
        "Replica bounds from {file}: {moves} (this replaces an earlier `enclii scale`)",
        "Límites de réplicas desde {file}: {moves} (esto reemplaza un `enclii scale` anterior)",
    ),
    "error": ("error", "error"),
    "hint.auth": (
        "Sign in with `enclii auth login`, or set ENCLII_TOKEN.",
        "Inicia sesión con `enclii auth login` o define ENCLII_TOKEN.",
    ),
    "hint.unreachable": (
        "Is Enclii running? Start it with `enclii serve`, or point ENCLII_API_URL at it.",
        "¿Está Enclii en marcha? Inícialo con `enclii serve` o apunta ENCLII_API_URL a él.",
    ),
    "timeout": (
        "Gave up waiting after {seconds:.0f}s; the deployment goes on: `enclii status {id}`",
        "Se dejó de esperar tras {seconds:.0f}s; el despliegue continúa: `enclii status {id}`",
    ),
}


def spanish() -> bool:
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(variable)
        if value:
            return value.lower().startswith("es")
    return False


def t(key: str, **values: object) -> str:
    english, spanish_text = MESSAGES[key]
    return (spanish_text if spanish() else english).format(**values)
