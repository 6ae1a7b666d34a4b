import type { ComponentChildren } from "preact";
import { Link, useRoute } from "wouter-preact";
import { useViewer } from "../api/viewer";
import { signOut } from "../auth/session";
import { t } from "../i18n";
import { LangSwitch } from "./LangSwitch";

function NavLink({ href, children }: { href: string; children: ComponentChildren }) {
  const [exact] = useRoute(href);
  const [nested] = useRoute(`${href}/*?`);
  const active = href === "/" ? exact : exact || nested;
  return (
    <Link href={href} class={active ? "active" : ""} aria-current={active ? "page" : undefined}>
      {children}
    </Link>
  );
}

export function Layout({ children }: { children: ComponentChildren }) {
  const viewer = useViewer();
  return (
    <div class="shell">
      <header class="top">
        <Link href="/" class="brand">Enclii</Link>
        <nav aria-label={t("nav.main")}>
          <NavLink href="/">{t("nav.dashboard")}</NavLink>
          <NavLink href="/projects">{t("nav.projects")}</NavLink>
          {viewer?.can.readAudit && <NavLink href="/audit">{t("nav.audit")}</NavLink>}
        </nav>
        <div class="who">
          <LangSwitch />
          <span class="muted" data-testid="viewer">
            {viewer?.user.displayName}
            {viewer?.role && <span class="role"> · {viewer.role.toLowerCase()}</span>}
          </span>
          <button class="link" onClick={signOut}>{t("signout")}</button>
        </div>
      </header>
      <main class="content">{children}</main>
    </div>
  );
}
