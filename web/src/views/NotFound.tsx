import { Link } from "wouter-preact";
import { t } from "../i18n";

export function NotFound() {
  return (
    <section class="empty">
      <h1>{t("notfound.title")}</h1>
      <p>{t("notfound.body")}</p>
      <Link href="/">{t("nav.dashboard")}</Link>
    </section>
  );
}
