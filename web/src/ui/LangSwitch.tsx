import { lang, setLang } from "../i18n";

export function LangSwitch() {
  return (
    <div class="lang" role="group" aria-label="Language / Idioma">
      <button class={lang.value === "en" ? "link active" : "link"} onClick={() => setLang("en")} lang="en">
        English
      </button>
      <button class={lang.value === "es" ? "link active" : "link"} onClick={() => setLang("es")} lang="es">
        Español
      </button>
    </div>
  );
}
