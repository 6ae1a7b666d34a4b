// Turning what the API says went wrong into words a person can act on. The server's own
// message is always shown as it is: it is precise (which field, which limit, which role).

import type { CombinedError } from "@urql/core";

export type Problem = { path: readonly string[]; message: string; line?: number | null };
export type ResultError = {
  __typename?: string;
  message: string;
  code?: string;
  problems?: readonly Problem[];
};

/** A union result that is not the success type, as one error. */
export function unionError(
  result: { __typename?: string } | null | undefined,
  success: string,
): ResultError | null {
  if (!result || result.__typename === success) return null;
  const r = result as ResultError;
  return { __typename: r.__typename, message: r.message ?? "Unexpected answer", code: r.code, problems: r.problems };
}

export function transportError(error: CombinedError | undefined): ResultError | null {
  if (!error) return null;
  const first = error.graphQLErrors[0];
  if (first) {
    const code = typeof first.extensions?.code === "string" ? first.extensions.code : undefined;
    return { message: error.graphQLErrors.map((e) => e.message).join("; "), code };
  }
  if (error.networkError) return { message: error.networkError.message, code: "NETWORK" };
  return { message: error.message };
}

export function firstError(
  error: CombinedError | undefined,
  result: { __typename?: string } | null | undefined,
  success: string,
): ResultError | null {
  return transportError(error) ?? unionError(result, success);
}
