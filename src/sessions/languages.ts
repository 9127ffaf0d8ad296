/** The languages a session's code contexts speak, by name and alias. */
import type { ContextLanguage } from "../contract/session.js";
import { WardenError } from "../errors.js";

/** Languages with a persistent context, by name and alias. */
const CONTEXT_LANGUAGES: Record<string, ContextLanguage> = {
  python: "python",
  py: "python",
  python3: "python",
  javascript: "javascript",
  js: "javascript",
  node: "javascript",
  typescript: "typescript",
  ts: "typescript",
  bash: "bash",
  sh: "bash",
  shell: "bash",
};

/** The context language a name or alias stands for, or null (own keys only: not `__proto__`). */
export function contextLanguageOf(name: string): ContextLanguage | null {
  const key = name.toLowerCase();
  return Object.hasOwn(CONTEXT_LANGUAGES, key) ? CONTEXT_LANGUAGES[key]! : null;
}

/** The context language a name or alias stands for, or UNSUPPORTED_LANGUAGE. */
export function contextLanguage(name: string): ContextLanguage {
  const language = contextLanguageOf(name);
  if (!language)
    throw new WardenError(
      "UNSUPPORTED_LANGUAGE",
      `language: code contexts exist for python, javascript, typescript and bash (got ${name})`,
    );
  return language;
}

/** The language a cell runs in: the one it names, or the session's default. */
export function cellLanguage(
  name: string | undefined,
  sessionDefault: ContextLanguage,
): ContextLanguage {
  return name ? contextLanguage(name) : sessionDefault;
}
