// English and Spanish. English is the source: es.ts must give every key (tsc checks it), so
// a string added in one language and forgotten in the other fails the build.

import { signal } from "@preact/signals";
import { en, type Messages } from "./en";
import { es } from "./es";

export type Lang = "en" | "es";
export type Key = keyof Messages;

const dictionaries: Record<Lang, Messages> = { en, es };
const STORAGE_KEY = "enclii.lang";

function initial(): Lang {
  const saved = localStorage.getItem(STORAGE_KEY);
  if (saved === "en" || saved === "es") return saved;
  return navigator.language.toLowerCase().startsWith("es") ? "es" : "en";
}

export const lang = signal<Lang>(initial());
document.documentElement.lang = lang.value;

export function setLang(next: Lang): void {
  lang.value = next;
  localStorage.setItem(STORAGE_KEY, next);
  document.documentElement.lang = next;
}

/** The message for `key` in the current language, with `{name}` filled from `vars`. */
export function t(key: Key, vars?: Record<string, string | number>): string {
  const text = dictionaries[lang.value][key];
  if (!vars) return text;
  return text.replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in vars ? String(vars[name]) : whole,
  );
}

/** The message for a key built at run time (a phase name from the API), or `fallback`. */
export function tOr(key: string, fallback: string): string {
  const text = (dictionaries[lang.value] as Record<string, string>)[key];
  return text ?? fallback;
}
