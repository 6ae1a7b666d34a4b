// Running a mutation from a button: busy while in flight, and the server's exact error
// (transport, GraphQL or a union's error member) when it fails.

import type { AnyVariables, TypedDocumentNode } from "@urql/core";
import { useMutation } from "@urql/preact";
import { useState } from "preact/hooks";
import { firstError, type ResultError } from "./errors";

export function useAction<Data extends Record<string, unknown>, Vars extends AnyVariables>(
  document: TypedDocumentNode<Data, Vars>,
  field: keyof Data,
  success: string,
) {
  const [state, execute] = useMutation<Data, Vars>(document);
  const [error, setError] = useState<ResultError | null>(null);
  const run = async (variables: Vars): Promise<Data[keyof Data] | null> => {
    setError(null);
    const result = await execute(variables);
    const value = (result.data?.[field] ?? null) as { __typename?: string } | null;
    const failure = firstError(result.error, value, success);
    if (failure) {
      setError(failure);
      return null;
    }
    return value as Data[keyof Data];
  };
  return { run, error, busy: state.fetching, clear: () => setError(null) };
}
