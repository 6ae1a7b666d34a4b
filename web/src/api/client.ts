// The one GraphQL client: queries and mutations over HTTP, subscriptions over graphql-ws.
//
// The websocket authenticates in connection_init (browsers cannot set headers on it) and is
// opened lazily, so a page with no live view holds no socket. graphql-ws retries a dropped
// socket with backoff; each live view resumes from the last sequence it saw (`after`), which
// is how nothing is missed or repeated across a reconnect.

import { Client, cacheExchange, fetchExchange, subscriptionExchange } from "@urql/core";
import { createClient as createWsClient, type Client as WsClient } from "graphql-ws";
import { signOut } from "../auth/session";

export function wsUrl(): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/graphql`;
}

export function makeClient(token: string): { client: Client; ws: WsClient } {
  const ws = createWsClient({
    url: wsUrl(),
    lazy: true,
    lazyCloseTimeout: 3000,
    connectionParams: { authorization: `Bearer ${token}` },
    retryAttempts: Infinity,
    shouldRetry: (event) => {
      // 4401: the token was refused or revoked; retrying would only be refused again.
      const code = (event as CloseEvent | undefined)?.code;
      if (code === 4401) {
        signOut();
        return false;
      }
      return true;
    },
    retryWait: async (retries) => {
      const delay = Math.min(10_000, 500 * 2 ** retries) * (0.5 + Math.random() / 2);
      await new Promise((resolve) => setTimeout(resolve, delay));
    },
  });
  const client = new Client({
    url: "/graphql",
    // Lists change under us all the time (deploys, scaling); ask the server, never a stale cache.
    requestPolicy: "cache-and-network",
    fetchOptions: () => ({ headers: { authorization: `Bearer ${token}` } }),
    fetch: async (input, init) => {
      const response = await fetch(input, init);
      if (response.status === 401) signOut();
      return response;
    },
    exchanges: [
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || "" };
          return {
            subscribe(sink) {
              const unsubscribe = ws.subscribe(input, sink);
              return { unsubscribe };
            },
          };
        },
      }),
    ],
  });
  return { client, ws };
}
