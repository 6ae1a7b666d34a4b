import type { ResultError } from "../api/errors";
import { t } from "../i18n";

/** The server's error, word for word, with the fields a validation error names. */
export function ErrorNotice({ error, onDismiss }: { error: ResultError | null; onDismiss?: () => void }) {
  if (!error) return null;
  return (
    <div class="notice error" role="alert" data-testid="error">
      <div class="notice-body">
        <strong>{error.code ? `${error.code}: ` : ""}</strong>
        {error.message}
        {error.problems && error.problems.length > 0 && (
          <ul>
            {error.problems.map((p) => (
              <li key={p.path.join(".") + p.message}>
                <code>{p.path.join(".") || "input"}</code> {p.message}
                {p.line != null && ` (${t("line")} ${p.line})`}
              </li>
            ))}
          </ul>
        )}
      </div>
      {onDismiss && (
        <button class="link" onClick={onDismiss} aria-label={t("dismiss")}>
          ×
        </button>
      )}
    </div>
  );
}
