import type { CodegenConfig } from "@graphql-codegen/cli";

// Typed documents for every graphql() call under src/, from the server's schema.graphql.
// Regenerate with `npm run codegen`; `npm run codegen:check` fails when they are stale.
const config: CodegenConfig = {
  schema: "../schema.graphql",
  documents: ["src/**/*.{ts,tsx}", "!src/gql/**/*"],
  ignoreNoDocuments: false,
  generates: {
    "./src/gql/": {
      preset: "client",
      presetConfig: { fragmentMasking: false },
      config: {
        useTypeImports: true,
        enumsAsTypes: true,
        scalars: { DateTime: "string", JSON: "unknown", Decimal: "string", Upload: "File" },
        skipTypename: false,
      },
    },
  },
  hooks: { afterAllFileWrite: [] },
};

export default config;
