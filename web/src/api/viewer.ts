// Who the viewer is and what they may do, shared by every view. Buttons for actions are
// shown only when the server says the caller (role and token scopes) may take them.

import { createContext } from "preact";
import { useContext } from "preact/hooks";
import { graphql } from "../gql";
import type { ViewerQuery } from "../gql/graphql";

export const ViewerDocument = graphql(`
  query Viewer {
    viewer {
      user { id displayName email }
      account { id name }
      role
      can { deploy routes observe readAudit writeProject readCost }
    }
  }
`);

export type ViewerInfo = ViewerQuery["viewer"];
export const ViewerContext = createContext<ViewerInfo | null>(null);

export function useViewer(): ViewerInfo | null {
  return useContext(ViewerContext);
}
