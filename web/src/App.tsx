import { Provider, useQuery } from "@urql/preact";
import { useEffect, useMemo, useState } from "preact/hooks";
import { Route, Router, Switch } from "wouter-preact";
import { makeClient } from "./api/client";
import { transportError } from "./api/errors";
import { ViewerContext, ViewerDocument } from "./api/viewer";
import { completeOidcSignIn, isOidcCallback } from "./auth/oidc";
import { currentSession, onSessionChange, signIn, takeTokenFromFragment, type Session } from "./auth/session";
import { SignIn } from "./auth/SignIn";
import { ErrorNotice } from "./ui/ErrorNotice";
import { Layout } from "./ui/Layout";
import { AuditView } from "./views/Audit";
import { Dashboard } from "./views/Dashboard";
import { DeploymentView } from "./views/Deployment";
import { LogsView } from "./views/Logs";
import { NotFound } from "./views/NotFound";
import { ProjectView } from "./views/Project";
import { ProjectsView } from "./views/Projects";
import { ServiceView } from "./views/Service";

export function App() {
  const [session, setSession] = useState<Session | null>(() => {
    const fromFragment = takeTokenFromFragment();
    if (fromFragment) signIn({ token: fromFragment, via: "token" }, false);
    return currentSession();
  });
  const [callbackError, setCallbackError] = useState<string | null>(null);

  useEffect(() => onSessionChange(setSession), []);
  useEffect(() => {
    if (!isOidcCallback()) return;
    completeOidcSignIn().catch((e: unknown) => setCallbackError(e instanceof Error ? e.message : String(e)));
  }, []);

  if (!session) return <SignIn error={callbackError} />;
  return <SignedIn key={session.token} token={session.token} />;
}

function SignedIn({ token }: { token: string }) {
  const { client, ws } = useMemo(() => makeClient(token), [token]);
  useEffect(() => () => void ws.dispose(), [ws]);
  return (
    <Provider value={client}>
      <WithViewer />
    </Provider>
  );
}

function WithViewer() {
  // Not waiting for the viewer before routing: the page's own query goes out beside it,
  // instead of one round trip later. Views that depend on the viewer render once it is in.
  const [{ data, error }] = useQuery({ query: ViewerDocument });
  return (
    <ViewerContext.Provider value={data?.viewer ?? null}>
      <Router>
        <Layout>
          {!data && error && <ErrorNotice error={transportError(error)} />}
          <Switch>
            <Route path="/" component={Dashboard} />
            <Route path="/projects" component={ProjectsView} />
            <Route path="/projects/:project">{(p) => <ProjectView slug={p.project} />}</Route>
            <Route path="/projects/:project/:env/:service">
              {(p) => <ServiceView project={p.project} env={p.env} name={p.service} />}
            </Route>
            <Route path="/projects/:project/:env/:service/logs">
              {(p) => <LogsView project={p.project} env={p.env} name={p.service} />}
            </Route>
            <Route path="/deployments/:id">{(p) => <DeploymentView id={p.id} />}</Route>
            <Route path="/audit" component={AuditView} />
            <Route component={NotFound} />
          </Switch>
        </Layout>
      </Router>
    </ViewerContext.Provider>
  );
}
